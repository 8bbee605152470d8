/** `/broadcast`: go live from the webcam, share the link, see the audience, record. */
import { broadcast, CascadeEvent, type Broadcast } from '@cascade/client-sdk';
import { $, demo, origin, publicUrl, showError } from './page.js';
import { withBroadcastToken } from './tokens.js';

export async function broadcastPage(): Promise<void> {
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


/** Ask the origin to record the stream just started (POST /api/streams/<id>/recording with the broadcast token). */
async function startRecording(streamId: string, token: string): Promise<void> {
  const res = await fetch(`/api/streams/${encodeURIComponent(streamId)}/recording`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
  $('recState').textContent = res.ok ? '● Recording: it will be on the Recordings page.' : `Not recording: ${body.message ?? body.code ?? res.status}`;
  demo.recording = res.ok;
}
