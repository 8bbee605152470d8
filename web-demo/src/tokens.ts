/**
 * Where the broadcast page's token comes from: a token in the URL (`/broadcast?token=…`) as
 * given; else the signed-in user's own (they go live under their name); else, on a development
 * server, one the server hands out (`/api/dev/token`), kept for this tab.
 */
import { api, fetchMe } from './session.js';
import { isAuthError } from './page.js';

const DEV_TOKEN_KEY = 'cascade-token';

/** A broadcast token from a development server, kept for this tab. */
async function devToken(): Promise<string> {
  const res = await fetch('/api/dev/token');
  if (!res.ok) throw Object.assign(new Error('this server needs a broadcast token: sign in (or open /broadcast?token=…)'), { code: 'CASCADE_ERR_AUTH_MISSING_TOKEN' });
  const { token } = (await res.json()) as { token: string };
  sessionStorage.setItem(DEV_TOKEN_KEY, token);
  return token;
}

/** Run `start` with the right broadcast token; says which kind it used. */
export async function withBroadcastToken<T>(given: string | null, start: (token: string) => Promise<T>): Promise<{ result: T; source: 'url' | 'account' | 'development' }> {
  if (given) return { result: await start(given), source: 'url' };
  if (await fetchMe()) {
    const { token } = await api<{ token: string }>('POST', '/api/me/tokens', { kind: 'broadcast' });
    return { result: await start(token), source: 'account' };
  }
  const cached = sessionStorage.getItem(DEV_TOKEN_KEY);
  try {
    return { result: await start(cached ?? (await devToken())), source: 'development' };
  } catch (err) {
    // A cached token dies with the server that signed it (a development server without a
    // secret signs with a new random one each run): drop it and try once with a fresh one.
    if (!cached || !isAuthError(err)) throw err;
    sessionStorage.removeItem(DEV_TOKEN_KEY);
    return { result: await start(await devToken()), source: 'development' };
  }
}
