import express from 'express';
import { CascadeError, toCascadeError, type IceServer, type Logger } from '@cascade/protocol';
import { parseSdpFragment } from '../sdp/offer.js';
import type { RecordHook } from '../mediaFrontEnds.js';
import type { WhipService } from '../whip/WhipService.js';
import { RECORDING_HEADER, STREAM_ID_HEADER, bearerToken, cors, iceServerLinks, methodNotAllowed, textBody } from './sdpHttp.js';

export interface WhipRouterOptions {
  iceServers: readonly IceServer[];
  /** Largest SDP body accepted, bytes. */
  maxBodyBytes: number;
}

const FRAGMENT = 'application/trickle-ice-sdpfrag';

/**
 * WHIP (RFC 9725) over HTTP:
 * - `POST /whip` (Content-Type: application/sdp, Authorization: Bearer <broadcast token>,
 *   optional `?title=` and `?record=1`): 201, the answer, `Location: /whip/<session>`, `ETag`,
 *   ICE servers in `Link` headers, the stream id in `Cascade-Stream-Id` and, when recording was
 *   asked for, `Cascade-Recording: started|disabled|failed`;
 * - `PATCH /whip/<session>` (application/trickle-ice-sdpfrag): trickled candidates 204 (the
 *   node is ICE-lite: it needs none), `If-Match: *` with new credentials restarts ICE (200);
 * - `DELETE /whip/<session>`: ends the stream (200);
 * - `OPTIONS` for CORS preflights; any other method 405.
 */
export function whipRouter(whip: WhipService, options: WhipRouterOptions, deps: { logger: Logger; record: RecordHook }): express.Router {
  const r = express.Router();
  const links = iceServerLinks(options.iceServers);
  const log = deps.logger.child({ component: 'WhipHttp' });

  r.all('/whip', cors(['POST'], { header: 'Accept-Post', type: 'application/sdp' }));
  r.all('/whip/:id', cors(['PATCH', 'DELETE'], { header: 'Accept-Patch', type: FRAGMENT }));

  r.post('/whip', textBody('application/sdp', options.maxBodyBytes), async (req, res) => {
    const title = typeof req.query.title === 'string' ? req.query.title.slice(0, 200) : undefined;
    const session = await whip.publish({
      sdp: req.body as string,
      token: bearerToken(req),
      remoteAddress: req.socket.remoteAddress ?? '',
      ...(title ? { title } : {}),
    });
    log.info({ whipId: session.id, streamId: session.streamId, remoteAddress: req.socket.remoteAddress }, 'WHIP session created');
    for (const l of links) res.append('Link', l);
    if (req.query.record === '1' || req.query.record === 'true') res.set(RECORDING_HEADER, await deps.record(session.streamId, session.owner));
    res
      .status(201)
      .set({ Location: `/whip/${session.id}`, ETag: session.etag, [STREAM_ID_HEADER]: session.streamId, 'Cache-Control': 'no-store' })
      .type('application/sdp')
      .send(session.answer);
  });

  r.patch('/whip/:id', textBody(FRAGMENT, options.maxBodyBytes), async (req, res) => {
    const session = whip.sessions.owned(String(req.params.id), bearerToken(req));
    const ifMatch = req.get('if-match');
    if (!ifMatch) throw new CascadeError('CASCADE_ERR_HTTP_PRECONDITION_REQUIRED');
    // Malformed fragments are refused (400) whatever they were meant for.
    const fragment = parseSdpFragment(req.body as string);
    if (ifMatch.trim() === '*') {
      if (!fragment.usernameFragment || !fragment.password) throw new CascadeError('CASCADE_ERR_SDP_INVALID', 'an ICE restart carries a=ice-ufrag and a=ice-pwd');
      const ice = await session.restartIce();
      res
        .status(200)
        .set('ETag', session.etag)
        .type(FRAGMENT)
        .send(`a=ice-lite\r\na=ice-ufrag:${ice.usernameFragment}\r\na=ice-pwd:${ice.password}\r\n`);
      return;
    }
    if (ifMatch.trim() !== session.etag) {
      throw new CascadeError('CASCADE_ERR_HTTP_PRECONDITION_FAILED', `current is ${session.etag}`);
    }
    // Trickled candidates: an ICE-lite node answers the client's checks wherever they come from.
    res.status(204).end();
  });

  r.delete('/whip/:id', async (req, res) => {
    const session = whip.sessions.owned(String(req.params.id), bearerToken(req));
    await session.unpublish();
    log.info({ whipId: session.id, streamId: session.streamId }, 'WHIP session deleted');
    res.status(200).end();
  });

  r.all('/whip', methodNotAllowed(['POST']));
  r.all('/whip/:id', methodNotAllowed(['PATCH', 'DELETE']));
  // Every refusal is logged with its code (broadcasters' misconfigured encoders are the usual cause).
  r.use(['/whip', '/whip/:id'], (err: unknown, req: express.Request, _res: express.Response, next: express.NextFunction) => {
    const e = toCascadeError(err);
    if (e.code !== 'CASCADE_ERR_INTERNAL') log.info({ code: e.code, method: req.method, path: req.path, remoteAddress: req.socket.remoteAddress, detail: e.message }, 'WHIP request refused');
    next(err);
  });
  return r;
}
