/** `/watch/<id>`: play a stream (quality menu, the layer received, whether the frames verify). */
import { CascadeEvent, isQuality, watch, type CascadeError, type QualityInfo, type StreamState, type Watch } from '@cascade/client-sdk';
import { $, demo, escapeHtml, isAuthError, origin } from './page.js';

const MESSAGES: Record<string, [string, string]> = {
  connecting: ['Connecting…', ''],
  waiting: ['This stream is not live yet', 'It will start playing as soon as the broadcaster goes live.'],
  reconnecting: ['The broadcaster is reconnecting…', 'Hang on, the stream should come back in a moment.'],
  nodelost: ['Reconnecting…', 'Moving you to another server.'],
  ended: ['This stream has ended', 'Thanks for watching.'],
  notfound: ['Stream not found', 'Check the link, or see who is live now.'],
  denied: ['This stream needs an invitation', 'Watching it takes a link with a valid watch token (…/watch/<id>?token=…). Ask the broadcaster for one.'],
  error: ['Cannot play this stream', ''],
};

/** What the panel says for each page state (the state names themselves are for tests). */
const STATE_LABELS: Record<string, string> = {
  connecting: 'Connecting',
  waiting: 'Not live yet',
  live: 'Live',
  reconnecting: 'Broadcaster reconnecting',
  nodelost: 'Reconnecting',
  ended: 'Ended',
  notfound: 'Not found',
  denied: 'Needs an invitation',
  error: 'Cannot play',
};

export async function watchPage(): Promise<void> {
  const streamId = decodeURIComponent(window.location.pathname.split('/').pop() ?? '');
  demo.streamId = streamId;
  // Deployments with auth.watchTokenRequired hand out watch links with ?token=<watch token>.
  const token = new URLSearchParams(window.location.search).get('token');
  // ?hold=0: show frames at once, only reporting whether they verify (see the SDK's integrity option).
  const hold = new URLSearchParams(window.location.search).get('hold') !== '0';
  const video = $<HTMLVideoElement>('video');
  $<HTMLAnchorElement>('statusLink').href = `/status/${encodeURIComponent(streamId)}`;
  const setMessage = (key: keyof typeof MESSAGES | null, extra = '') => {
    const overlay = $('overlay');
    if (!key) {
      overlay.hidden = true;
      return;
    }
    overlay.hidden = false;
    const [title, text] = MESSAGES[key]!;
    $('overlayTitle').textContent = title;
    $('overlayText').innerHTML = extra || escapeHtml(text) + (key === 'notfound' || key === 'ended' ? ' <a href="/">Live now →</a>' : '');
    $('spinner').hidden = !['connecting', 'reconnecting', 'nodelost', 'waiting'].includes(key);
  };
  const setState = (s: string) => {
    demo.state = s;
    $('state').textContent = STATE_LABELS[s] ?? s;
    // Nothing to hear on a page that plays nothing.
    $('unmute').hidden = ['notfound', 'ended', 'denied', 'error'].includes(s);
    const badge = $('badge');
    badge.hidden = s !== 'live';
    badge.className = 'badge live live-pill';
    badge.innerHTML = '<span class="dot"></span>Live';
  };
  $('unmute').addEventListener('click', () => {
    video.muted = !video.muted;
    $('unmute').textContent = video.muted ? 'Unmute' : 'Mute';
  });
  video.addEventListener('resize', () => ($('resolution').textContent = `${video.videoWidth}×${video.videoHeight}`));

  // ?quality=low starts on that quality; the menu changes it while playing.
  const asked = new URLSearchParams(window.location.search).get('quality');
  const menu = $<HTMLSelectElement>('quality');
  if (isQuality(asked)) menu.value = asked;
  let w: Watch;
  try {
    w = await watch({ url: origin, streamId, ...(token ? { token } : {}), ...(isQuality(asked) ? { quality: asked } : {}), ...(hold ? {} : { integrity: { hold: false } }) });
  } catch (err) {
    const code = (err as CascadeError).code ?? 'CASCADE_ERR_INTERNAL';
    demo.error = { code, message: (err as Error).message };
    if (code === 'CASCADE_ERR_STREAM_NOT_FOUND' || code === 'CASCADE_ERR_STREAM_INVALID_ID') {
      setState('notfound');
      setMessage('notfound');
    } else if (code === 'CASCADE_ERR_STREAM_ENDED') {
      setState('ended');
      setMessage('ended');
    } else if (isAuthError(err)) {
      setState('denied');
      setMessage('denied', `${escapeHtml(MESSAGES.denied![1])}<br><code>${escapeHtml(code)}</code>`);
    } else {
      setState('error');
      setMessage('error', `${escapeHtml((err as Error).message)}<br><code>${escapeHtml(code)}</code>`);
    }
    return;
  }
  (window as unknown as { cascadeWatch: Watch }).cascadeWatch = w;
  document.title = `${w.stream?.title ?? 'Stream'} · Cascade`;
  $('title').textContent = w.stream?.title ?? '';
  $('subtitle').textContent = `Stream ${streamId}`;
  video.srcObject = w.mediaStream;
  const showNode = () => {
    demo.nodeId = w.nodeId;
    $('node').textContent = w.nodeId ?? '–';
  };
  showNode();
  const applyStreamState = (s: StreamState) => {
    setState(s);
    setMessage(s === 'live' ? null : s);
  };
  applyStreamState(w.streamState);
  w.on(CascadeEvent.Live, () => applyStreamState('live'));
  w.on(CascadeEvent.Waiting, (s) => applyStreamState(s));
  w.on(CascadeEvent.Ended, () => applyStreamState('ended'));
  demo.nodes = w.nodeId ? [{ nodeId: w.nodeId, why: 'joined', at: Date.now() }] : [];
  w.on(CascadeEvent.NodeChanged, (nodeId, why) => {
    demo.nodes!.push({ nodeId, why, at: Date.now() });
    showNode();
  });
  w.on(CascadeEvent.Reconnecting, () => {
    setMessage('nodelost');
    setState('nodelost');
  });
  w.on(CascadeEvent.Reconnected, () => {
    demo.reconnects++;
    $('reconnects').textContent = String(demo.reconnects);
    applyStreamState(w.streamState);
  });
  w.on(CascadeEvent.Error, (e) => {
    demo.error = { code: e.code, message: e.message };
    setState('error');
    // The SDK gave up (no node had room, or none answered, for a minute): the viewer may try again.
    setMessage('error', `${escapeHtml(e.message)}<br><code>${escapeHtml(e.code)}</code><br><a href="" data-testid="retry">Try again</a>`);
  });
  w.on(CascadeEvent.Track, () => void video.play().catch(() => {}));
  const showQuality = (q: QualityInfo) => {
    demo.quality = q;
    $('layer').textContent = layerLabel(q);
    menu.value = q.quality;
  };
  showQuality(w.quality);
  w.on(CascadeEvent.Quality, showQuality);
  menu.addEventListener('change', () => {
    if (isQuality(menu.value)) w.setQuality(menu.value);
  });
  showIntegrity(w);
}

const INTEGRITY_LABELS: Record<string, string> = {
  verifying: 'Checking…',
  verified: 'Verified ✓',
  unverified: 'Not verified',
  tampered: 'Altered by the relay',
  unsupported: 'Cannot verify in this browser',
  off: 'Not signed',
};

/** Whether what plays is the broadcaster's stream as the origin signed it, and what happens when it is not. */
function showIntegrity(w: Watch): void {
  demo.integrityLog = [];
  const badge = $('verifiedBadge');
  const banner = $('tamperBanner');
  const show = (s: { state: string; code?: string; nodeId: string }) => {
    demo.integrity = { state: s.state, nodeId: s.nodeId, ...(s.code ? { code: s.code } : {}) };
    demo.integrityLog!.push({ ...demo.integrity, at: Date.now() });
    $('integrity').textContent = INTEGRITY_LABELS[s.state] ?? s.state;
    $('integrity').title = s.code ?? '';
    badge.hidden = !['verified', 'unverified', 'tampered'].includes(s.state);
    badge.className = `badge verified-pill ${s.state === 'verified' ? '' : s.state}`;
    badge.textContent = s.state === 'verified' ? '✓ Verified' : s.state === 'tampered' ? '⚠ Altered' : '⚠ Not verified';
    if (s.state === 'tampered' || s.state === 'unverified') {
      banner.hidden = false;
      banner.textContent = `${s.state === 'tampered' ? 'The relay serving you altered the stream' : 'The relay serving you withholds the signatures of the stream'}: moving you to another server (${s.code ?? ''}).`;
    } else if (s.state === 'verified') banner.hidden = true;
  };
  const current = w.integrity;
  if (current) show(current);
  w.on(CascadeEvent.Integrity, show);
}

/** "High (3 of 3)" for a layer received, or why there is none. */
function layerLabel(q: QualityInfo): string {
  if (q.quality === 'audio') return 'audio only';
  if (q.spatialLayer === null) return '–';
  const names = q.layers >= 3 ? ['Low', 'Medium', 'High', 'Highest'] : q.layers === 2 ? ['Low', 'High'] : ['Single'];
  return `${names[q.spatialLayer] ?? `Layer ${q.spatialLayer + 1}`} (${q.spatialLayer + 1} of ${q.layers})`;
}
