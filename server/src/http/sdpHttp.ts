/**
 * HTTP plumbing shared by WHIP and WHEP: CORS for players and encoders on other sites, bearer
 * tokens, SDP bodies with a size limit and an exact content type, ICE servers as Link headers.
 */
import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { CascadeError, toCascadeError, type IceServer, type Logger } from '@cascade/protocol';
import { parseSdpFragment } from '../sdp/offer.js';

/** The media type of PATCH bodies (RFC 8840). */
export const FRAGMENT = 'application/trickle-ice-sdpfrag';

/** The response header that names the stream a WHIP POST published to (also exposed to CORS). */
export const STREAM_ID_HEADER = 'Cascade-Stream-Id';
/** Whether a recording asked for with the POST runs: started, disabled (by the operator) or failed. */
export const RECORDING_HEADER = 'Cascade-Recording';
/** The node a WHEP viewer was placed on (the origin, or a relay behind the same endpoint). */
export const NODE_ID_HEADER = 'Cascade-Node-Id';

/**
 * CORS for any origin. Safe here: these endpoints authenticate with bearer tokens, never
 * cookies, so a foreign page can do nothing its token does not allow. Preflights answer 204.
 */
export function cors(methods: string[], accept?: { header: 'Accept-Post' | 'Accept-Patch'; type: string }): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    res.set({
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Methods': ['OPTIONS', ...methods].join(', '),
      'Access-Control-Allow-Headers': 'Authorization, Content-Type, If-Match',
      'Access-Control-Expose-Headers': `Location, Link, ETag, Accept-Post, Accept-Patch, ${STREAM_ID_HEADER}, ${RECORDING_HEADER}, ${NODE_ID_HEADER}`,
      'Access-Control-Max-Age': '600',
    });
    if (accept) res.set(accept.header, accept.type);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next();
  };
}

/** The token of `Authorization: Bearer <token>`, if any. */
export function bearerToken(req: Request): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
  return m?.[1];
}

/** 405 with an Allow header for methods a WHIP/WHEP URL reserves (RFC 9725 §4). */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  return (req, res) => {
    res.set('Allow', ['OPTIONS', ...allowed].join(', '));
    throw new CascadeError('CASCADE_ERR_HTTP_METHOD_NOT_ALLOWED', `${req.method} ${req.baseUrl}${req.path}`);
  };
}

/**
 * Read a text body of exactly `type` (415 otherwise), at most `maxBytes` (413), into req.body.
 * A body of the wrong type is refused before it is read.
 */
export function textBody(type: string, maxBytes: number): RequestHandler {
  const parse = express.text({ type, limit: maxBytes });
  return (req, res, next) => {
    if (!req.is(type)) {
      next(new CascadeError('CASCADE_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE', `send Content-Type: ${type}`));
      return;
    }
    parse(req, res, (err?: unknown) => {
      const e = err as { type?: string } | undefined;
      if (e?.type === 'entity.too.large') next(new CascadeError('CASCADE_ERR_PROTOCOL_TOO_LARGE', `an SDP body is at most ${maxBytes} bytes`));
      else if (err) next(new CascadeError('CASCADE_ERR_SDP_INVALID', 'unreadable body', { cause: err }));
      else if (typeof req.body !== 'string' || req.body.length === 0) next(new CascadeError('CASCADE_ERR_SDP_INVALID', 'empty body'));
      else next();
    });
  };
}

const quoted = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;

/** ICE servers as RFC 9725 Link headers: `<turn:…>; rel="ice-server"; username="…"; credential="…"; credential-type="password"`. */
export function iceServerLinks(servers: readonly IceServer[]): string[] {
  return servers.flatMap((s) =>
    (Array.isArray(s.urls) ? s.urls : [s.urls]).map((url) => {
      let link = `<${url}>; rel="ice-server"`;
      if (s.username !== undefined) link += `; username=${quoted(s.username)}`;
      if (s.credential !== undefined) link += `; credential=${quoted(s.credential)}; credential-type="password"`;
      return link;
    }),
  );
}

/** What PATCH acts on: a WHIP or WHEP session's ICE. */
export interface IcePatchable {
  etag: string;
  restartIce(): Promise<{ usernameFragment: string; password: string }>;
}

/**
 * PATCH on a WHIP/WHEP session (RFC 9725 §4.3): `If-Match: *` with new credentials restarts
 * ICE (200, the node's new credentials, a new ETag); the current ETag with candidates is
 * trickle (204: an ICE-lite node answers the client's checks wherever they come from);
 * no If-Match 428, a stale one 412, a malformed fragment 400.
 */
export async function patchIce(session: IcePatchable, req: Request, res: Response): Promise<void> {
  const ifMatch = req.get('if-match')?.trim();
  if (!ifMatch) throw new CascadeError('CASCADE_ERR_HTTP_PRECONDITION_REQUIRED');
  const fragment = parseSdpFragment(req.body as string);
  if (ifMatch === '*') {
    if (!fragment.usernameFragment || !fragment.password) throw new CascadeError('CASCADE_ERR_SDP_INVALID', 'an ICE restart carries a=ice-ufrag and a=ice-pwd');
    const ice = await session.restartIce();
    res.status(200).set('ETag', session.etag).type(FRAGMENT).send(`a=ice-lite\r\na=ice-ufrag:${ice.usernameFragment}\r\na=ice-pwd:${ice.password}\r\n`);
    return;
  }
  if (ifMatch !== session.etag) throw new CascadeError('CASCADE_ERR_HTTP_PRECONDITION_FAILED', `current is ${session.etag}`);
  res.status(204).end();
}

/** Log every refusal with its code (misconfigured encoders and players are the usual cause), then let the error handler answer. */
export function logRefusals(log: Logger, what: string): ErrorRequestHandler {
  return (err: unknown, req: Request, _res: Response, next: NextFunction) => {
    const e = toCascadeError(err);
    if (e.code !== 'CASCADE_ERR_INTERNAL') log.info({ code: e.code, method: req.method, path: req.path, remoteAddress: req.socket.remoteAddress, detail: e.message }, `${what} request refused`);
    next(err);
  };
}
