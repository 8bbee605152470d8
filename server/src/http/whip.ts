import express from 'express';
import type { IceServer, Logger } from '@cascade/protocol';
import type { RecordHook } from '../recording/RecordHook.js';
import type { WhipService } from '../whip/WhipService.js';
import { FRAGMENT, RECORDING_HEADER, STREAM_ID_HEADER, bearerToken, cors, iceServerLinks, logRefusals, methodNotAllowed, patchIce, textBody } from './sdpHttp.js';

export interface WhipRouterOptions {
  iceServers: readonly IceServer[];
  /** Largest SDP body accepted, bytes. */
  maxBodyBytes: number;
}

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
    await patchIce(whip.sessions.owned(String(req.params.id), bearerToken(req)), req, res);
  });

  r.delete('/whip/:id', async (req, res) => {
    const session = whip.sessions.owned(String(req.params.id), bearerToken(req));
    await session.unpublish();
    log.info({ whipId: session.id, streamId: session.streamId }, 'WHIP session deleted');
    res.status(200).end();
  });

  r.all('/whip', methodNotAllowed(['POST']));
  r.all('/whip/:id', methodNotAllowed(['PATCH', 'DELETE']));
  r.use(['/whip', '/whip/:id'], logRefusals(log, 'WHIP'));
  return r;
}
