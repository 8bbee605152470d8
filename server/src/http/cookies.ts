import type { Request, Response } from 'express';

export const SESSION_COOKIE = 'cascade_session';

/** One cookie of the request (no parser dependency: one name, one value). */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // a malformed escape: no cookie we set
      }
    }
  }
  return undefined;
}

/**
 * The session cookie: httpOnly (page scripts never see it), SameSite=Strict (no other site's
 * page sends it), Secure when the deployment is served over https.
 */
export function setSessionCookie(res: Response, value: string, maxAgeSec: number, secure: boolean): void {
  res.append('Set-Cookie', `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${secure ? '; Secure' : ''}`);
}

export function clearSessionCookie(res: Response, secure: boolean): void {
  res.append('Set-Cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`);
}
