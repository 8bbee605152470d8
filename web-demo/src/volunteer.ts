/**
 * `/volunteer`: the signed-in user's relay token and the one line that runs a relay with it,
 * what their relays earned (balance, GB relayed, viewers served, hours online, points per day
 * over two weeks, recent activity), and their tokens, each revocable. Refreshed every 5 s, so
 * the balance grows on screen while a relay serves.
 */
import { api, fetchMe, signOut, type Me } from './session.js';
import { $ } from './page.js';

interface PageState {
  state: string;
  error?: { code: string; message: string };
}

interface Credits extends Omit<Me, 'id' | 'name' | 'createdAt'> {
  pointsPerGB: number;
  watchCost: number;
  daily: { day: string; earned: number; spent: number; bytes: number }[];
  history: { at: number; kind: 'grant' | 'credit' | 'spend'; points: number; bytes: number; ref: string }[];
}
interface TokenInfo { id: string; kind: 'relay' | 'broadcast'; issuedAt: number; expiresAt: number; revoked: boolean }

/** What tests (and the curious) can read: `window.cascadeVolunteer`. */
interface VolunteerState { balance?: number; bytesRelayed?: number; command?: string; tokenId?: string; tokens?: TokenInfo[] }

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmtPoints = (p: number) => (p === 0 ? '0' : p >= 100 ? p.toFixed(0) : p >= 1 ? p.toFixed(2) : p.toFixed(4));
const when = (ms: number) => new Date(ms).toLocaleString();

/** Bars of points earned per day; the day under each, the figure on hover. */
function chart(daily: Credits['daily']): string {
  const max = Math.max(...daily.map((d) => d.earned), 0);
  const w = 600;
  const h = 160;
  const slot = w / Math.max(1, daily.length);
  const bars = daily
    .map((d, i) => {
      const bh = max > 0 ? Math.max(d.earned > 0 ? 2 : 0, ((h - 30) * d.earned) / max) : 0;
      const x = i * slot + slot * 0.15;
      return `<g><title>${esc(d.day)}: ${fmtPoints(d.earned)} points, ${(d.bytes / 1e9).toFixed(3)} GB</title>
        <rect x="${x.toFixed(1)}" y="${(h - 18 - bh).toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${bh.toFixed(1)}" rx="2"></rect>
        <text x="${(x + slot * 0.35).toFixed(1)}" y="${h - 4}" text-anchor="middle">${esc(d.day.slice(5))}</text></g>`;
    })
    .join('');
  const baseline = `<line x1="0" x2="${w}" y1="${h - 18}" y2="${h - 18}" stroke="#30363d"></line>`;
  const empty = max === 0 ? `<text x="${w / 2}" y="${h / 2}" text-anchor="middle">no points yet</text>` : '';
  return `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="points earned per day">${baseline}${bars}${empty}</svg>`;
}

export async function volunteerPage(demo: PageState): Promise<void> {
  const v: VolunteerState = {};
  (window as unknown as { cascadeVolunteer: VolunteerState }).cascadeVolunteer = v;
  const me = await fetchMe();
  if (!me) {
    $('signedOut').hidden = false;
    demo.state = 'signedout';
    return;
  }
  $('signedIn').hidden = false;
  $('who').textContent = me.name;
  const showError = (err: unknown) => {
    const e = err as { code?: string; message?: string };
    demo.error = { code: e.code ?? 'CASCADE_ERR_INTERNAL', message: e.message ?? String(err) };
    $('error').innerHTML = `${esc(e.message ?? '')}<br><code>${esc(e.code ?? '')}</code>`;
    $('error').hidden = false;
  };

  const renderTokens = async () => {
    const { tokens } = await api<{ tokens: TokenInfo[] }>('GET', '/api/me/tokens');
    v.tokens = tokens;
    $('tokens').innerHTML = tokens.length
      ? `<tr><th>id</th><th>kind</th><th>issued</th><th></th></tr>` +
        tokens
          .map(
            (t) => `<tr data-testid="token-row" data-token-id="${esc(t.id)}"><td><code>${esc(t.id)}</code></td><td>${esc(t.kind)}</td><td>${esc(when(t.issuedAt))}</td>
              <td>${t.revoked ? '<span class="badge revoked">revoked</span>' : `<button class="btn small" data-revoke="${esc(t.id)}" data-testid="revoke">Revoke</button>`}</td></tr>`,
          )
          .join('')
      : '<tr><td class="muted">No tokens yet.</td></tr>';
  };
  $('tokens').addEventListener('click', async (ev) => {
    const id = (ev.target as HTMLElement).dataset.revoke;
    if (!id) return;
    try {
      await api('DELETE', `/api/me/tokens/${encodeURIComponent(id)}`);
      await renderTokens();
    } catch (err) {
      showError(err);
    }
  });

  const renderCredits = async () => {
    const c = await api<Credits>('GET', '/api/me/credits?days=14');
    v.balance = c.balance;
    v.bytesRelayed = c.bytesRelayed;
    $('rate').textContent = `${c.pointsPerGB} point${c.pointsPerGB === 1 ? '' : 's'}`;
    $('balance').textContent = fmtPoints(c.balance);
    $('gb').textContent = (c.bytesRelayed / 1e9).toFixed(3);
    $('viewersServed').textContent = String(c.viewersServed);
    $('hours').textContent = c.hoursOnline.toFixed(1);
    $('chart').innerHTML = chart(c.daily);
    $('history').innerHTML = c.history.length
      ? c.history
          .slice(0, 10)
          .map((h) => {
            const what = h.kind === 'credit' ? `relayed ${(h.bytes / 1e6).toFixed(1)} MB (relay ${esc(h.ref)})` : h.kind === 'spend' ? `watched stream ${esc(h.ref)}` : 'welcome grant';
            return `<tr><td>${esc(when(h.at))}</td><td>${what}</td><td>${h.kind === 'spend' ? '−' : '+'}${fmtPoints(h.points)}</td></tr>`;
          })
          .join('')
      : '<tr><td class="muted">Nothing yet: start a relay and let viewers reach it.</td></tr>';
  };

  $('getToken').addEventListener('click', async () => {
    const button = $<HTMLButtonElement>('getToken');
    button.disabled = true;
    try {
      const t = await api<{ id: string; token: string; expiresAt: number; command: string }>('POST', '/api/me/tokens', { kind: 'relay' });
      v.command = t.command;
      v.tokenId = t.id;
      $('command').textContent = t.command;
      $('expires').textContent = when(t.expiresAt);
      $('commandBox').hidden = false;
      button.textContent = 'Get another token';
      await renderTokens();
      demo.state = 'token';
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  });
  $('copy').addEventListener('click', () => void navigator.clipboard?.writeText($('command').textContent ?? ''));
  $('signOut').addEventListener('click', async (ev) => {
    ev.preventDefault();
    await signOut().catch(() => undefined);
    window.location.href = '/';
  });

  try {
    await Promise.all([renderCredits(), renderTokens()]);
    demo.state = 'ready';
  } catch (err) {
    showError(err);
  }
  // One request at a time: a slow answer never overwrites a newer one.
  const loop = async () => {
    await renderCredits().catch(() => undefined);
    setTimeout(() => void loop(), 5000);
  };
  setTimeout(() => void loop(), 5000);
}
