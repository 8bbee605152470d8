import express from 'express';
import { CascadeError, StreamId, isValid, type Logger } from '@cascade/protocol';
import type { WhepService } from '../whep/WhepService.js';
import { FRAGMENT, NODE_ID_HEADER, bearerToken, cors, iceServerLinks, logRefusals, methodNotAllowed, patchIce, textBody } from './sdpHttp.js';

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
    await patchIce(whep.session(streamId(req), String(req.params.id)), req, res);
  });

  r.delete('/whep/:streamId/:id', (req, res) => {
    whep.session(streamId(req), String(req.params.id)).close('deleted by the player');
    res.status(200).end();
  });

  r.all('/whep/:streamId', methodNotAllowed(['POST']));
  r.all('/whep/:streamId/:id', methodNotAllowed(['PATCH', 'DELETE']));
  r.use(['/whep/:streamId', '/whep/:streamId/:id'], logRefusals(log, 'WHEP'));
  return r;
}
