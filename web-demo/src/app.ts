/**
 * The web demo: `/` lists live streams, `/broadcast` goes live from the webcam, `/watch/<id>`
 * plays a stream, `/status/<id>` shows the tree that carries it. Bundled for the browser with the client SDK. Page state is mirrored on
 * `window.cascadeDemo` so that end-to-end tests (and curious users) can read it.
 */
import {
  broadcast,
  CascadeEvent,
  isQuality,
  watch,
  type QualityInfo,
  type Broadcast,
  type CascadeError,
  type StreamState,
  type Watch,
} from '@cascade/client-sdk';
import { accountPage } from './account.js';
import { showAccountLink } from './session.js';
import { withBroadcastToken } from './tokens.js';
import { volunteerPage } from './volunteer.js';
import { recordingsPage, replayPage } from './replay.js';

interface DemoState {
  page: string;
  state: string;
  /** Watch page: the quality asked for and the layer received (CascadeEvent.Quality). */
  quality?: QualityInfo;
  streamId?: string;
  nodeId?: string;
  viewers?: number;
  reconnects: number;
  recording?: boolean;
  error?: { code: string; message: string };
  /** Where the broadcast token came from (url, account, development). */
  tokenSource?: string;
  /** Watch page: whether the frames shown verify (see CascadeEvent.Integrity), and every change with its time. */
  integrity?: { state: string; code?: string; nodeId: string };
  integrityLog?: { state: string; code?: string; nodeId: string; at: number }[];
}
const demo: DemoState = { page: document.body.dataset.page ?? '', state: 'init', reconnects: 0 };
(window as unknown as { cascadeDemo: DemoState }).cascadeDemo = demo;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const origin = window.location.origin;
/**
 * Where other people reach this deployment (`http.publicUrl`, put in the page by the server):
 * share links use it. Without one, the page's own address, which may be localhost.
 */
const publicUrl = document.querySelector<HTMLMetaElement>('meta[name="cascade-public-url"]')?.content.replace(/\/+$/, '') || origin;

/** Anything as HTML-safe text (a browser's own error may carry a number where ours have strings). */
function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function showError(err: unknown): void {
  const e = err as CascadeError;
  const code = e.code ?? 'CASCADE_ERR_INTERNAL';
  demo.error = { code, message: e.message ?? String(err) };
  const box = $('error');
  box.innerHTML = `<strong>${escapeHtml(friendly(code))}</strong><br><span class="muted">${escapeHtml(e.message ?? '')}</span><br><code>${escapeHtml(code)}</code>`;
  box.hidden = false;
}

const isAuthError = (err: unknown) => String((err as CascadeError | undefined)?.code ?? '').startsWith('CASCADE_ERR_AUTH_');

function friendly(code: string): string {
  if (code.startsWith('CASCADE_ERR_AUTH_')) return 'You are not allowed to broadcast (bad or expired token).';
  if (code === 'CASCADE_ERR_CLIENT_MEDIA') return 'Cannot use the camera.';
  if (code === 'CASCADE_ERR_STREAM_ALREADY_LIVE') return 'This stream already has a broadcaster.';
  if (code === 'CASCADE_ERR_NODE_CAPACITY') return 'The server is full right now.';
  if (code.startsWith('CASCADE_ERR_CLIENT_')) return 'Cannot reach the server.';
  return 'Something went wrong.';
}

// ---------------------------------------------------------------- home

async function home(): Promise<void> {
  const render = async () => {
    try {
      const res = await fetch('/api/streams');
      const { streams } = (await res.json()) as { streams: { id: string; title: string; state: StreamState; viewers: number; createdAt: number }[] };
      $('empty').hidden = streams.length > 0;
      $('streams').innerHTML = streams
        .map(
          (s) => `<a class="card" href="/watch/${encodeURIComponent(s.id)}" data-testid="stream-card">
            <div class="thumb">▶<span class="badge ${escapeHtml(String(s.state))}">${s.state === 'live' ? '<span class="dot"></span>Live' : escapeHtml(String(s.state))}</span></div>
            <div class="body"><div class="title">${escapeHtml(s.title)}</div>
            <div class="meta">${Number(s.viewers)} watching · started ${new Date(s.createdAt).toLocaleTimeString()}</div></div></a>`,
        )
        .join('');
      demo.state = 'listed';
    } catch {
      demo.state = 'offline';
    }
  };
  await render();
  setInterval(() => void render(), 5000);
}

// ---------------------------------------------------------------- broadcast

async function broadcastPage(): Promise<void> {
  const preview = $<HTMLVideoElement>('preview');
  const goLive = $<HTMLButtonElement>('goLive');
  const status = $('status');
  let camera: MediaStream;
  // ?height=360 asks the camera for less (weak machines, tests); 720p by default.
  const height = Number(new URLSearchParams(window.location.search).get('height')) || 720;
  try {
    camera = await navigator.mediaDevices
      .getUserMedia({ video: { width: Math.round((height * 16) / 9), height }, audio: true })
      .catch(() => navigator.mediaDevices.getUserMedia({ video: true }));
  } catch (err) {
    $('previewOverlay').innerHTML = '<div class="big">No camera</div><div class="small">Allow camera access and reload the page.</div>';
    showError(Object.assign(new Error((err as Error).message), { code: 'CASCADE_ERR_CLIENT_MEDIA' }));
    demo.state = 'error';
    return;
  }
  preview.srcObject = camera;
  $('previewOverlay').hidden = true;
  goLive.disabled = false;
  status.textContent = 'Camera ready.';
  demo.state = 'ready';

  const params = new URLSearchParams(window.location.search);
  // The operator decides whether streams may be recorded; the broadcaster whether this one is.
  void fetch('/api/recordings')
    .then((r) => r.json() as Promise<{ enabled: boolean }>)
    .then((r) => ($('recordField').hidden = !r.enabled))
    .catch(() => {});
  if (params.get('record') === '1') $<HTMLInputElement>('record').checked = true;
  let session: Broadcast | undefined;
  let usedToken = '';
  goLive.addEventListener('click', async () => {
    goLive.disabled = true;
    $('error').hidden = true;
    status.textContent = 'Connecting…';
    demo.state = 'connecting';
    try {
      const title = ($<HTMLInputElement>('title').value || '').trim();
      const start = (token: string) => {
        usedToken = token;
        return broadcast({ url: origin, token, stream: camera, ...(title ? { title } : {}), ...sendOptions(params) });
      };
      // ?token=… as given; else the signed-in user's own token; else a development token.
      const { result, source } = await withBroadcastToken(params.get('token'), start);
      session = result;
      demo.tokenSource = source;
    } catch (err) {
      showError(err);
      status.textContent = 'Not live.';
      goLive.disabled = false;
      demo.state = 'error';
      return;
    }
    const b = session;
    // For tests and the curious: the producers' getStats() (key frame requests seen, bitrate).
    (window as unknown as { cascadeBroadcast: typeof b }).cascadeBroadcast = b;
    demo.state = 'live';
    demo.streamId = b.streamId;
    const watchUrl = `${publicUrl}/watch/${encodeURIComponent(b.streamId)}`;
    $('setup').hidden = true;
    $('liveInfo').hidden = false;
    $('livePill').hidden = false;
    $('streamId').textContent = b.streamId;
    $<HTMLInputElement>('shareUrl').value = watchUrl;
    $<HTMLAnchorElement>('watchLink').href = watchUrl;
    $<HTMLAnchorElement>('statusLink').href = `/status/${encodeURIComponent(b.streamId)}`;
    $('copy').addEventListener('click', () => void navigator.clipboard?.writeText(watchUrl));
    if ($<HTMLInputElement>('record').checked) void startRecording(b.streamId, usedToken);
    b.on(CascadeEvent.Viewers, (n) => {
      demo.viewers = n;
      $('viewers').textContent = String(n);
    });
    b.on(CascadeEvent.Reconnecting, () => {
      demo.state = 'reconnecting';
      $('connState').textContent = 'Connection lost, reconnecting… your viewers are waiting.';
    });
    b.on(CascadeEvent.Reconnected, () => {
      demo.state = 'live';
      demo.reconnects++;
      $('connState').textContent = '';
    });
    b.on(CascadeEvent.Error, (e) => {
      showError(e);
      demo.state = 'error';
    });
    $('stop').addEventListener('click', async () => {
      await b.stop();
      demo.state = 'stopped';
      $('livePill').hidden = true;
      $('connState').textContent = 'Stream ended.';
      ($('stop') as HTMLButtonElement).disabled = true;
    });
  });
  if (params.get('autostart') === '1') goLive.click();
}

/**
 * How the page sends video, from its URL: `?simulcast=0` sends one encoding instead of three
 * layers, `?codec=h264` H.264 instead of VP8 (tests and the curious).
 */
function sendOptions(params: URLSearchParams): { simulcast?: false; videoCodec?: 'vp8' | 'h264' } {
  return {
    ...(params.get('simulcast') === '0' ? { simulcast: false as const } : {}),
    ...(params.get('codec') === 'h264' ? { videoCodec: 'h264' as const } : {}),
  };
}

/** "High (3 of 3)" for a layer received, or why there is none. */
function layerLabel(q: QualityInfo): string {
  if (q.quality === 'audio') return 'audio only';
  if (q.spatialLayer === null) return '–';
  const names = q.layers >= 3 ? ['Low', 'Medium', 'High', 'Highest'] : q.layers === 2 ? ['Low', 'High'] : ['Single'];
  return `${names[q.spatialLayer] ?? `Layer ${q.spatialLayer + 1}`} (${q.spatialLayer + 1} of ${q.layers})`;
}

/** Ask the origin to record the stream just started (POST /api/streams/<id>/recording with the broadcast token). */
async function startRecording(streamId: string, token: string): Promise<void> {
  const res = await fetch(`/api/streams/${encodeURIComponent(streamId)}/recording`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
  $('recState').textContent = res.ok ? '● Recording: it will be on the Recordings page.' : `Not recording: ${body.message ?? body.code ?? res.status}`;
  demo.recording = res.ok;
}

// ---------------------------------------------------------------- watch

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

async function watchPage(): Promise<void> {
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
  w.on(CascadeEvent.NodeChanged, showNode);
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

// ---------------------------------------------------------------- status

interface TopologyNode {
  id: string;
  kind: 'origin' | 'relay';
  volunteer: boolean;
  status: string;
  parent: string | null;
  depth: number;
  viewers: number;
  children: number;
  bitrateOutKbps: number;
  /** A volunteer's name (its relay token's subject). */
  name?: string;
}
interface Topology {
  streamId: string;
  viewers: number;
  depth: number;
  relayShare: number;
  nodes: TopologyNode[];
  /** Relays the origin caught altering or withholding this stream. */
  removed?: { nodeId: string; code: string; at: number }[];
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** One node and, under it, the nodes it feeds. */
function renderNode(n: TopologyNode, byParent: Map<string | null, TopologyNode[]>): string {
  const badges = [
    `<span class="badge ${escapeHtml(n.kind)}">${escapeHtml(n.kind)}</span>`,
    n.volunteer ? '<span class="badge volunteer">volunteer</span>' : '',
    n.name ? `<span class="name" data-testid="volunteer-name">${escapeHtml(n.name)}</span>` : '',
    n.status !== 'ready' ? `<span class="badge ${escapeHtml(n.status)}">${escapeHtml(n.status)}</span>` : '',
  ].join('');
  const mbps = (n.bitrateOutKbps / 1000).toFixed(n.bitrateOutKbps >= 10_000 ? 0 : 1);
  const kids = byParent.get(n.id) ?? [];
  return `<li><div class="node" data-testid="node" data-node-id="${escapeHtml(n.id)}" data-depth="${Number(n.depth)}">
      <span class="id">${escapeHtml(n.id)}</span>${badges}
      <span class="figs">${plural(n.viewers, 'viewer')} · ${plural(n.children, 'relay', 'relays')} fed · ${mbps} Mbit/s out</span></div>
    ${kids.length ? `<ul>${kids.map((k) => renderNode(k, byParent)).join('')}</ul>` : ''}</li>`;
}

async function statusPage(): Promise<void> {
  const streamId = decodeURIComponent(window.location.pathname.split('/').pop() ?? '');
  demo.streamId = streamId;
  $<HTMLAnchorElement>('watchLink').href = `/watch/${encodeURIComponent(streamId)}`;
  const render = async () => {
    try {
      const [s, t] = await Promise.all([fetch(`/api/streams/${encodeURIComponent(streamId)}`), fetch(`/api/streams/${encodeURIComponent(streamId)}/topology`)]);
      if (!s.ok || !t.ok) {
        const body = (await (s.ok ? t : s).json().catch(() => ({}))) as { code?: string; message?: string };
        throw Object.assign(new Error(body.message ?? `HTTP ${(s.ok ? t : s).status}`), { code: body.code ?? 'CASCADE_ERR_INTERNAL' });
      }
      const stream = (await s.json()) as { title: string; state: StreamState };
      const topo = (await t.json()) as Topology;
      $('error').hidden = true;
      $('title').textContent = `${stream.title} · distribution`;
      $('subtitle').textContent = `Stream ${streamId} is ${stream.state}; refreshed every two seconds.`;
      $('viewers').textContent = String(topo.viewers);
      $('relayShare').textContent = topo.viewers > 0 ? `${Math.round(topo.relayShare * 100)} %` : '–';
      $('nodeCount').textContent = String(topo.nodes.length);
      $('depth').textContent = String(topo.depth);
      const byParent = new Map<string | null, TopologyNode[]>();
      for (const n of topo.nodes) byParent.set(n.parent, [...(byParent.get(n.parent) ?? []), n]);
      // Roots: the origin, and any node whose parent is not (or no longer) in the tree.
      const ids = new Set(topo.nodes.map((n) => n.id));
      const roots = topo.nodes.filter((n) => n.parent === null || !ids.has(n.parent));
      $('tree').innerHTML = roots.map((n) => renderNode(n, byParent)).join('');
      const removed = topo.removed ?? [];
      $('removedBox').hidden = removed.length === 0;
      $('removed').innerHTML = removed
        .map((r) => `<li data-testid="removed-relay" data-node-id="${escapeHtml(r.nodeId)}"><span class="id">${escapeHtml(r.nodeId)}</span> <span class="badge condemned">demoted</span> <span class="muted">${escapeHtml(new Date(r.at).toLocaleTimeString())} · <code>${escapeHtml(r.code)}</code></span></li>`)
        .join('');
      demo.state = stream.state;
      demo.viewers = topo.viewers;
    } catch (err) {
      const e = err as CascadeError;
      demo.state = e.code === 'CASCADE_ERR_STREAM_NOT_FOUND' ? 'notfound' : 'error';
      demo.error = { code: e.code, message: e.message };
      const box = $('error');
      box.innerHTML = `<strong>${e.code === 'CASCADE_ERR_STREAM_NOT_FOUND' ? 'Stream not found' : 'Cannot read the tree'}</strong><br><code>${escapeHtml(e.code ?? '')}</code>`;
      box.hidden = false;
      $('tree').innerHTML = '';
    }
  };
  // One request at a time: a slow answer never overwrites a newer one.
  const loop = async () => {
    await render();
    setTimeout(() => void loop(), 2000);
  };
  await loop();
}

const pages: Record<string, () => Promise<void>> = {
  home,
  broadcast: broadcastPage,
  watch: watchPage,
  status: statusPage,
  account: () => accountPage(demo),
  volunteer: () => volunteerPage(demo),
  recordings: () => recordingsPage(demo),
  replay: () => replayPage(demo),
};
void showAccountLink();
void pages[demo.page]?.();
