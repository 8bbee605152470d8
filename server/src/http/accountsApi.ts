import express, { type NextFunction, type Request, type Response } from 'express';
import { CascadeError, type Logger } from '@cascade/protocol';
import {
  balanceOf,
  utcDay,
  type AccountRecord,
  type AccountService,
  type CreditService,
  type LedgerEntry,
  type RevocationList,
  type TokenService,
} from '@cascade/controller';
import { clearSessionCookie, readCookie, SESSION_COOKIE, setSessionCookie } from './cookies.js';

export interface AccountsApiDeps {
  /** Absent when accounts are disabled: the account routes answer CASCADE_ERR_ACCOUNT_DISABLED. */
  accounts: AccountService | undefined;
  credits: CreditService;
  tokens: TokenService;
  revocations: RevocationList;
  logger: Logger;
  /** The deployment's public base URL: relays register with it (the Volunteer page's command line). */
  publicUrl: string;
}

const points = (micro: number) => Math.round(micro) / 1e6;
const DAY_MS = 86_400_000;

/** What /api/me and the operator listing show of a ledger entry. */
function ledgerView(e: LedgerEntry | undefined) {
  const x = e ?? { earned: 0, granted: 0, spent: 0, bytes: 0, viewersServed: 0, onlineMs: 0 };
  return {
    balance: points(balanceOf(x)),
    earned: points(x.earned),
    granted: points(x.granted),
    spent: points(x.spent),
    bytesRelayed: x.bytes,
    viewersServed: x.viewersServed,
    hoursOnline: Math.round((x.onlineMs / 3_600_000) * 100) / 100,
  };
}

/** host[:port] of an Origin header; undefined for 'null' or garbage. */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

const accountView = (a: AccountRecord) => ({ id: a.id, name: a.name, createdAt: a.createdAt });

/**
 * Sign-up, sign-in, the signed-in user's account, credits and tokens (`/api/account/*`,
 * `/api/me*`), and the operator's routes (`GET /api/credits`, `POST /api/tokens/revoke`, with an
 * operator token as `Authorization: Bearer …`). Requests that change anything with a session
 * cookie must be JSON from this site: a request whose Origin is another site is refused
 * (CASCADE_ERR_ACCOUNT_CROSS_SITE) on top of the SameSite=Strict cookie.
 */
export function accountsRouter(deps: AccountsApiDeps): express.Router {
  const r = express.Router();
  const { credits } = deps;
  const secure = deps.publicUrl.startsWith('https:');
  const parse = express.json({ limit: '4kb' });
  // Bodies too big or not JSON get their codes here (the generic handler would call them internal).
  const json = (req: Request, res: Response, next: NextFunction) =>
    parse(req, res, (err?: unknown) => {
      if (!err) return next();
      const type = (err as { type?: string }).type;
      next(type === 'entity.too.large' ? new CascadeError('CASCADE_ERR_PROTOCOL_TOO_LARGE', 'bodies are at most 4 KiB') : new CascadeError('CASCADE_ERR_PROTOCOL_MALFORMED', 'request body is not JSON'));
    });
  const publicHost = hostOf(deps.publicUrl);

  const accounts = (): AccountService => {
    if (!deps.accounts) throw new CascadeError('CASCADE_ERR_ACCOUNT_DISABLED');
    return deps.accounts;
  };
  const address = (req: Request) => req.ip ?? req.socket.remoteAddress ?? 'unknown';
  const signedIn = (req: Request) => accounts().authenticate(readCookie(req, SESSION_COOKIE));
  /** Refuse state changes from another site's page (and bodies that are not JSON, which a plain form could send). */
  const sameSite = (req: Request, _res: Response, next: NextFunction) => {
    const origin = req.get('origin');
    // The page's own host, or the public one (a proxy in front may rewrite Host).
    if (origin !== undefined && hostOf(origin) !== req.get('host') && hostOf(origin) !== publicHost) return next(new CascadeError('CASCADE_ERR_ACCOUNT_CROSS_SITE', origin.slice(0, 200)));
    if (req.method === 'POST' && req.get('content-length') !== '0' && !req.is('application/json')) {
      return next(new CascadeError('CASCADE_ERR_PROTOCOL_MALFORMED', 'send JSON (Content-Type: application/json)'));
    }
    next();
  };
  const body = (req: Request) => (typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : {});

  // ------------------------------------------------------------------ sign-up, sign-in

  r.post('/api/account/signup', sameSite, json, async (req, res) => {
    const b = body(req);
    const s = await accounts().signUp(b.name, b.password, address(req));
    setSessionCookie(res, s.cookie, s.maxAgeSec, secure);
    res.status(201).json({ account: accountView(s.account) });
  });

  r.post('/api/account/signin', sameSite, json, async (req, res) => {
    const b = body(req);
    const s = await accounts().signIn(b.name, b.password, address(req));
    setSessionCookie(res, s.cookie, s.maxAgeSec, secure);
    res.json({ account: accountView(s.account) });
  });

  r.post('/api/account/signout', sameSite, async (req, res) => {
    await accounts().signOut(readCookie(req, SESSION_COOKIE));
    clearSessionCookie(res, secure);
    res.status(204).end();
  });

  // ------------------------------------------------------------------ the signed-in user

  r.get('/api/me', async (req, res) => {
    const a = await signedIn(req);
    res.json({ ...accountView(a), ...ledgerView(await credits.ledger.get(a.id)) });
  });

  r.get('/api/me/credits', async (req, res) => {
    const a = await signedIn(req);
    const n = Math.min(90, Math.max(1, Number(req.query.days) || 14));
    const today = Date.now();
    const days = Array.from({ length: n }, (_, i) => utcDay(today - (n - 1 - i) * DAY_MS));
    const [entry, daily, history] = await Promise.all([credits.ledger.get(a.id), credits.ledger.daily(a.id, days), credits.ledger.history(a.id, 50)]);
    res.json({
      ...ledgerView(entry),
      pointsPerGB: credits.options.pointsPerGB,
      watchCost: credits.options.watchCost,
      daily: daily.map((d) => ({ day: d.day, earned: points(d.earned), spent: points(d.spent), bytes: d.bytes })),
      history: history.map((h) => ({ at: h.at, kind: h.kind, points: points(h.micro), bytes: h.bytes, ref: h.ref })),
    });
  });

  r.get('/api/me/tokens', async (req, res) => {
    const a = await signedIn(req);
    res.json({ tokens: await accounts().listTokens(a) });
  });

  r.post('/api/me/tokens', sameSite, json, async (req, res) => {
    const a = await signedIn(req);
    const kind = body(req).kind;
    if (kind !== 'relay' && kind !== 'broadcast') throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', "kind is 'relay' or 'broadcast'");
    const t = await accounts().issueToken(a, kind);
    res.status(201).json({
      id: t.id,
      kind,
      token: t.token,
      expiresAt: t.expiresAt,
      ...(kind === 'relay' ? { command: `npm run relay -- --controller ${deps.publicUrl} --token ${t.token}` } : {}),
    });
  });

  r.delete('/api/me/tokens/:id', sameSite, async (req, res) => {
    const a = await signedIn(req);
    await accounts().revokeToken(a, String(req.params.id));
    res.status(204).end();
  });

  // ------------------------------------------------------------------ operator

  const operator = (req: Request) => {
    const auth = req.get('authorization') ?? '';
    const claims = deps.tokens.verify(auth.startsWith('Bearer ') ? auth.slice(7) : undefined, 'operator');
    deps.logger.info({ operator: claims.sub, path: req.path }, 'operator request');
    return claims;
  };

  r.get('/api/credits', async (req, res) => {
    operator(req);
    const store = accounts().store;
    const offset = Math.max(0, Number(req.query.offset) || 0);
    const limit = Math.min(500, Math.max(1, Number(req.query.limit) || 100));
    const [list, total] = await Promise.all([store.listAccounts(offset, limit), store.countAccounts()]);
    const entries = new Map((await credits.ledger.getMany(list.map((a) => a.id))).map((e) => [e.accountId, e]));
    res.json({ total, offset, accounts: list.map((a) => ({ ...accountView(a), ...ledgerView(entries.get(a.id)) })) });
  });

  r.post('/api/tokens/revoke', json, async (req, res) => {
    const claims = operator(req);
    const id = body(req).id;
    if (typeof id !== 'string' || id.length === 0 || id.length > 64) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'id: the token id to revoke');
    const revoked = await deps.revocations.revoke(id);
    deps.logger.info({ operator: claims.sub, tokenId: id, revoked }, 'operator revoked a token');
    res.json({ id, revoked });
  });

  return r;
}
