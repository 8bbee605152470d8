/** `/`: the live streams, refreshed every 5 s. */
import type { StreamState } from '@cascade/client-sdk';
import { $, demo, escapeHtml } from './page.js';

export async function homePage(): Promise<void> {
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
