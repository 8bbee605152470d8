/**
 * The signed-in user, as the pages see it: `/api/me` (the session cookie is httpOnly, so pages
 * only ever learn who they are from the server), JSON calls to the account API with coded
 * errors, and the account link every page's header shows.
 */

export interface Me {
  id: string;
  name: string;
  createdAt: number;
  balance: number;
  earned: number;
  granted: number;
  spent: number;
  bytesRelayed: number;
  viewersServed: number;
  hoursOnline: number;
}

/** An error from the API: its stable code and message (the body every Cascade error has). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Call the API (same origin: the session cookie goes along); throws ApiError. */
export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  if (res.status === 204) return undefined as T;
  const data = (await res.json().catch(() => ({}))) as T & { code?: string; message?: string };
  if (!res.ok) throw new ApiError(data.code ?? 'CASCADE_ERR_INTERNAL', data.message ?? `HTTP ${res.status}`, res.status);
  return data;
}

let mine: Promise<Me | undefined> | undefined;

/** Who is signed in (undefined for nobody, or where accounts are disabled). Asked once per page. */
export function fetchMe(): Promise<Me | undefined> {
  mine ??= api<Me>('GET', '/api/me').catch(() => undefined);
  return mine;
}

/** The header's account link: the user's name (to the Volunteer page), or "Sign in". */
export async function showAccountLink(): Promise<void> {
  const link = document.getElementById('accountLink') as HTMLAnchorElement | null;
  if (!link) return;
  const me = await fetchMe();
  link.textContent = me ? me.name : 'Sign in';
  link.href = me ? '/volunteer' : `/account?next=${encodeURIComponent(window.location.pathname)}`;
  link.dataset.signedIn = me ? '1' : '0';
}

export async function signOut(): Promise<void> {
  await api('POST', '/api/account/signout');
  mine = undefined;
}
