import express from 'express';
import { CascadeError, StreamId, isValid, toCascadeError, type Logger } from '@cascade/protocol';
import { parseSdpFragment } from '../sdp/offer.js';
import type { WhepService } from '../whep/WhepService.js';
import { NODE_ID_HEADER, bearerToken, cors, iceServerLinks, methodNotAllowed, textBody } from './sdpHttp.js';

const FRAGMENT = 'application/trickle-ice-sdpfrag';

/**
 * WHEP playback over HTTP, on the deployment's public endpoint whichever node serves:
 * - `POST /whep/<streamId>` (application/sdp, `Authorization: Bearer <watch token>` where
 *   watching needs one): 201, the answer, `Location: /whep/<streamId>/<session>`, `ETag`, ICE
 *   servers in `Link`, the serving node in `Cascade-Node-Id`;
 * - `PATCH` (trickle 204, `If-Match: *` ICE restart 200) and `DELETE` (200) on the session;
 * - `OPTIONS` for CORS; other methods 405.
 */
export function whepRouter(whep: WhepService, options: { maxBodyBytes: number }, deps: { logger: Logger }): express.Router {
  const r = express.Router();
  const log = deps.logger.child({ component: 'WhepHttp' });
  const streamId = (req: express.Request): string => {
    const id = String(req.params.streamId);
    if (!isValid(StreamId, id)) throw new CascadeError('CASCADE_ERR_STREAM_INVALID_ID', 'ids are 3-64 of A-Z a-z 0-9 _ -');
    return id;
  };

  r.all('/whep/:streamId', cors(['POST'], { header: 'Accept-Post', type: 'application/sdp' }));
  r.all('/whep/:streamId/:id', cors(['PATCH', 'DELETE'], { header: 'Accept-Patch', type: FRAGMENT }));

  r.post('/whep/:streamId', textBody('application/sdp', options.maxBodyBytes), async (req, res) => {
    const token = bearerToken(req);
    const session = await whep.play({ streamId: streamId(req), sdp: req.body as string, remoteAddress: req.socket.remoteAddress ?? '', ...(token ? { token } : {}) });
    log.info({ whepId: session.id, streamId: session.streamId, nodeId: session.nodeId, remoteAddress: req.socket.remoteAddress }, 'WHEP session created');
    for (const l of iceServerLinks(session.iceServers)) res.append('Link', l);
    res
      .status(201)
      .set({ Location: `/whep/${session.streamId}/${session.id}`, ETag: session.etag, [NODE_ID_HEADER]: session.nodeId, 'Cache-Control': 'no-store' })
      .type('application/sdp')
      .send(session.answer);
  });

  r.patch('/whep/:streamId/:id', textBody(FRAGMENT, options.maxBodyBytes), async (req, res) => {
    const session = whep.session(streamId(req), String(req.params.id));
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
    // Trickled candidates: the serving node is ICE-lite and answers the player's checks wherever they come from.
    res.status(204).end();
  });

  r.delete('/whep/:streamId/:id', (req, res) => {
    whep.session(streamId(req), String(req.params.id)).close('deleted by the player');
    res.status(200).end();
  });

  r.all('/whep/:streamId', methodNotAllowed(['POST']));
  r.all('/whep/:streamId/:id', methodNotAllowed(['PATCH', 'DELETE']));
  r.use(['/whep/:streamId', '/whep/:streamId/:id'], (err: unknown, req: express.Request, _res: express.Response, next: express.NextFunction) => {
    const e = toCascadeError(err);
    if (e.code !== 'CASCADE_ERR_INTERNAL') log.info({ code: e.code, method: req.method, path: req.path, remoteAddress: req.socket.remoteAddress, detail: e.message }, 'WHEP request refused');
    next(err);
  });
  return r;
}
