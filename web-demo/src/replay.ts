/**
 * `/recordings` (what was recorded) and `/replay/<id>` (plays one, with seeking: the file is
 * served with range requests). State is mirrored on `window.cascadeDemo` as on the other pages.
 */
import { $, escapeHtml } from './page.js';

interface Recording {
  id: string;
  title: string;
  state: 'recording' | 'complete' | 'stopped' | 'failed';
  reason?: string;
  startedAt: number;
  durationMs?: number;
  bytes: number;
  url: string;
  replay: string;
}

interface PageState {
  state: string;
  error?: { code: string; message: string };
}


function describe(r: Recording): string {
  const parts = [new Date(r.startedAt).toLocaleString()];
  if (r.durationMs !== undefined) parts.push(`${Math.round(r.durationMs / 1000)} s`);
  parts.push(`${(r.bytes / 1e6).toFixed(1)} MB`);
  if (r.state === 'recording') parts.push('recording now');
  if (r.state === 'stopped') parts.push(`cut short: ${r.reason ?? 'a limit'}`);
  if (r.state === 'failed') parts.push('failed');
  return parts.join(' · ');
}

export async function recordingsPage(demo: PageState): Promise<void> {
  const res = await fetch('/api/recordings');
  const { enabled, recordings } = (await res.json()) as { enabled: boolean; recordings: Recording[] };
  $('empty').hidden = recordings.length > 0;
  if (!enabled) $('emptyText').textContent = 'Recording is not enabled on this server.';
  $('recordings').innerHTML = recordings
    .map(
      (r) => `<a class="card" href="${escapeHtml(r.replay)}" data-testid="recording-card">
        <div class="thumb">▶</div>
        <div class="body"><div class="title">${escapeHtml(r.title)}</div><div class="meta">${escapeHtml(describe(r))}</div></div></a>`,
    )
    .join('');
  demo.state = 'listed';
}

export async function replayPage(demo: PageState): Promise<void> {
  const id = decodeURIComponent(window.location.pathname.split('/').pop() ?? '');
  const video = $<HTMLVideoElement>('video');
  (window as unknown as { cascadeReplay: { video: HTMLVideoElement } }).cascadeReplay = { video };
  demo.state = 'loading';
  const res = await fetch(`/api/recordings/${encodeURIComponent(id)}`);
  if (!res.ok) {
    const e = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
    demo.state = res.status === 404 ? 'notfound' : 'error';
    demo.error = { code: e.code ?? 'CASCADE_ERR_INTERNAL', message: e.message ?? '' };
    $('error').innerHTML = `<strong>${res.status === 404 ? 'Recording not found' : 'Cannot play this recording'}</strong><br><code>${escapeHtml(demo.error.code)}</code>`;
    $('error').hidden = false;
    return;
  }
  const r = (await res.json()) as Recording;
  $('title').textContent = r.title;
  $('subtitle').textContent = describe(r);
  $('details').innerHTML = `<a href="${escapeHtml(r.url)}" download>Download</a>`;
  video.addEventListener('loadedmetadata', () => (demo.state = 'ready'));
  video.addEventListener('error', () => {
    demo.state = 'error';
    demo.error = { code: 'CASCADE_ERR_CLIENT_MEDIA', message: video.error?.message ?? 'cannot decode' };
  });
  video.src = r.url;
}
