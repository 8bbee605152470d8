import express from 'express';
import { CascadeError, StreamId, isValid, type Logger } from '@cascade/protocol';
import type { RecordingInfo, RecordingService } from '../recording/RecordingService.js';
import { bearerToken } from './sdpHttp.js';

const withUrl = (r: RecordingInfo) => ({ ...r, url: `/recordings/${encodeURIComponent(r.id)}/file`, replay: `/replay/${encodeURIComponent(r.id)}` });

/**
 * Recordings over HTTP:
 * - `GET /api/recordings`, `GET /api/recordings/<id>`: what exists (with the file URL);
 * - `GET /recordings/<id>/file`: the file, with range requests (the replay page seeks with them);
 * - `DELETE /api/recordings/<id>`: the broadcaster's token, or an operator token;
 * - `POST` / `DELETE /api/streams/<id>/recording`: the broadcaster starts or stops recording.
 * With recording off (`recording.enabled` false) the list is empty and starting is refused.
 */
export function recordingsRouter(
  recordings: RecordingService | undefined,
  deps: { logger: Logger; streamOwner: (streamId: string) => string | undefined },
): express.Router {
  const r = express.Router();
  const log = deps.logger.child({ component: 'RecordingsHttp' });
  const service = (): RecordingService => {
    if (!recordings) throw new CascadeError('CASCADE_ERR_RECORDING_DISABLED', 'an operator turns it on with recording.enabled');
    return recordings;
  };
  const streamId = (req: express.Request): string => {
    const id = String(req.params.id);
    if (!isValid(StreamId, id)) throw new CascadeError('CASCADE_ERR_STREAM_INVALID_ID', 'ids are 3-64 of A-Z a-z 0-9 _ -');
    return id;
  };

  r.get('/api/recordings', (_req, res) => {
    res.json({ enabled: Boolean(recordings), recordings: (recordings?.list() ?? []).map(withUrl) });
  });
  r.get('/api/recordings/:id', (req, res) => {
    res.json(withUrl(service().get(String(req.params.id))));
  });
  r.delete('/api/recordings/:id', async (req, res) => {
    await service().deleteByToken(String(req.params.id), bearerToken(req));
    res.status(200).json({ deleted: String(req.params.id) });
  });
  r.post('/api/streams/:id/recording', async (req, res) => {
    const id = streamId(req);
    const info = await service().startByToken(id, bearerToken(req), deps.streamOwner(id));
    log.info({ streamId: id }, 'recording started on request');
    res.status(201).json({ streamId: id, recording: info ? withUrl(info) : null });
  });
  r.delete('/api/streams/:id/recording', (req, res) => {
    service().stopByToken(streamId(req), bearerToken(req));
    res.status(200).json({ streamId: streamId(req), recording: false });
  });
  r.get('/recordings/:id/file', (req, res, next) => {
    const s = service();
    const info = s.get(String(req.params.id));
    // send answers Range requests with 206 and Content-Range: the replay page's seeks are those.
    res.sendFile(s.filePath(info.id), {
      headers: { 'Content-Type': info.mimeType, 'Cache-Control': info.state === 'recording' ? 'no-store' : 'private, max-age=60' },
      acceptRanges: true,
      dotfiles: 'deny',
    }, (err) => {
      if (err && !res.headersSent) next(new CascadeError('CASCADE_ERR_RECORDING_NOT_FOUND', `${info.id}: the file is gone`, { cause: err }));
    });
  });
  return r;
}
