import express from 'express';
import { CascadeError, type Logger } from '@cascade/protocol';
import type { RtpIngestService } from '../ingest/RtpIngestService.js';
import type { RecordHook } from '../recording/RecordHook.js';
import type { RtpVideoCodec } from '../ingest/RtpIngestSession.js';
import { ffmpegCommand, ffmpegOutputArgs, senderSdp } from '../ingest/rtpRecipe.js';
import { bearerToken, logRefusals, methodNotAllowed } from './sdpHttp.js';

const VIDEO: Record<string, RtpVideoCodec | undefined> = { vp8: 'VP8', h264: 'H264', none: undefined };

function parseRequest(body: unknown): { video: RtpVideoCodec | undefined; audio: boolean; title?: string; record: boolean } {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b !== 'object' || Array.isArray(b)) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'send a JSON object');
  const video = String(b.video ?? 'vp8').toLowerCase();
  if (!(video in VIDEO)) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'video is vp8, h264 or none');
  if (b.audio !== undefined && typeof b.audio !== 'boolean') throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'audio is true or false');
  if (b.title !== undefined && (typeof b.title !== 'string' || b.title.length > 200)) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'title is a string of at most 200 characters');
  if (b.record !== undefined && typeof b.record !== 'boolean') throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'record is true or false');
  return { video: VIDEO[video], audio: b.audio !== false, record: b.record === true, ...(typeof b.title === 'string' && b.title ? { title: b.title } : {}) };
}

/**
 * Plain RTP ingest (`npx cascade ingest` uses it):
 * - `POST /ingest/rtp` (JSON `{ video?: "vp8"|"h264"|"none", audio?: boolean, title?: string, record?: boolean }`,
 *   `Authorization: Bearer <broadcast token>`): 201 `{ streamId, session, tracks, ffmpeg, ffmpegOutputArgs, sdp }`;
 * - `DELETE /ingest/rtp/<session>`: ends the stream.
 * Disabled (`rtpIngest.enabled` false, the default): 404 with a message saying so.
 */
export function rtpIngestRouter(ingest: RtpIngestService | undefined, deps: { logger: Logger; record: RecordHook }): express.Router {
  const r = express.Router();
  const log = deps.logger.child({ component: 'RtpIngestHttp' });
  if (!ingest) {
    r.all(['/ingest/rtp', '/ingest/rtp/:id'], () => {
      throw new CascadeError('CASCADE_ERR_HTTP_NOT_FOUND', 'plain RTP ingest is disabled on this origin (rtpIngest.enabled)');
    });
    return r;
  }
  r.post('/ingest/rtp', (req, _res, next) => (req.is('application/json') ? next() : next(new CascadeError('CASCADE_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json'))), express.json({ limit: 4096 }), async (req, res) => {
    const { record, ...wanted } = parseRequest(req.body);
    const session = await ingest.publish({ ...wanted, token: bearerToken(req), remoteAddress: req.socket.remoteAddress ?? '' });
    // The recorder starts once the first packets arrive (the stream has no media before).
    const recording = record ? await deps.record(session.streamId, session.owner) : undefined;
    res
      .status(201)
      .set('Location', `/ingest/rtp/${session.id}`)
      .json({
        streamId: session.streamId,
        session: `/ingest/rtp/${session.id}`,
        tracks: session.tracks,
        ffmpeg: ffmpegCommand(session.tracks),
        ffmpegOutputArgs: ffmpegOutputArgs(session.tracks),
        sdp: senderSdp(session.tracks, session.streamId),
        ...(recording ? { recording } : {}),
      });
  });
  r.delete('/ingest/rtp/:id', async (req, res) => {
    const session = ingest.sessions.owned(String(req.params.id), bearerToken(req));
    await session.unpublish();
    res.status(200).end();
  });
  r.all('/ingest/rtp', methodNotAllowed(['POST']));
  r.all('/ingest/rtp/:id', methodNotAllowed(['DELETE']));
  r.use(['/ingest/rtp', '/ingest/rtp/:id'], logRefusals(log, 'RTP ingest'));
  return r;
}
