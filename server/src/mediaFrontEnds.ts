import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type express from 'express';
import { Gauge, type Registry } from 'prom-client';
import { CascadeError, type Logger } from '@cascade/protocol';
import type { CascadeConfig } from '@cascade/config';
import type { TokenService } from '@cascade/controller';
import { recordingsRouter } from './http/recordings.js';
import { rtpIngestRouter } from './http/rtpIngest.js';
import { whepRouter } from './http/whep.js';
import { whipRouter } from './http/whip.js';
import { RtpIngestService } from './ingest/RtpIngestService.js';
import type { OriginNode } from './origin/OriginNode.js';
import { RecordingService } from './recording/RecordingService.js';
import { WhepService, directOpener } from './whep/WhepService.js';
import { WhipService } from './whip/WhipService.js';

import type { RecordHook } from './recording/RecordHook.js';

export type { RecordHook };

/**
 * The origin's HTTP front ends to its media node, each driving the node's own signalling:
 * WHIP ingest, WHEP playback (on this node or, through its signalling, on a relay), plain RTP
 * ingest, recordings. Mounted on `app` before the API's catch-all.
 */
export async function startMediaFrontEnds(
  config: Readonly<CascadeConfig>,
  deps: { app: express.Express; origin: OriginNode; tokens: TokenService; registry: Registry; logger: Logger },
): Promise<{ close(): Promise<void> }> {
  const { app, origin, tokens, registry, logger: log } = deps;
  const node = origin.node;
  const requestTimeoutMs = config.signalling.requestTimeoutMs;

  let recordings: RecordingService | undefined;
  if (config.recording.enabled) {
    if (spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status !== 0) {
      throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', 'recording.enabled needs ffmpeg on the PATH (apt-get install ffmpeg)');
    }
    recordings = await RecordingService.create(node, { ...config.recording, dir: path.resolve(config.recording.dir) }, { tokens, logger: log });
    const rec = recordings;
    new Gauge({ name: 'cascade_recordings_active', help: 'Streams being recorded on this origin', registers: [registry], collect() { this.set(rec.activeCount); } });
  }
  const streamOwner = (id: string) => origin.publishers.records.find((r) => r.id === id)?.owner;
  const record: RecordHook = async (streamId, owner) => {
    if (!recordings) return 'disabled';
    try {
      await recordings.start(streamId, owner);
      return 'started';
    } catch (err) {
      log.warn({ err, streamId }, 'cannot start the recording asked for');
      return 'failed';
    }
  };

  let whip: WhipService | undefined;
  if (config.whip.enabled) {
    whip = new WhipService(node, { idleTimeoutMs: config.whip.idleTimeoutMs, requestTimeoutMs }, { tokens, logger: log });
    const w = whip;
    new Gauge({ name: 'cascade_whip_sessions', help: 'WHIP broadcasters connected to this origin', registers: [registry], collect() { this.set(w.sessions.size); } });
    app.use(whipRouter(whip, { iceServers: config.iceServers, maxBodyBytes: config.signalling.maxMessageBytes }, { logger: log, record }));
  }
  let rtpIngest: RtpIngestService | undefined;
  if (config.rtpIngest.enabled) {
    rtpIngest = new RtpIngestService(node, { idleTimeoutMs: config.whip.idleTimeoutMs, startTimeoutMs: config.rtpIngest.startTimeoutMs, requestTimeoutMs }, { tokens, logger: log });
  }
  app.use(rtpIngestRouter(rtpIngest, { logger: log, record }));
  let whep: WhepService | undefined;
  if (config.whep.enabled) {
    whep = new WhepService(directOpener(node), { idleTimeoutMs: config.whep.idleTimeoutMs, requestTimeoutMs }, { logger: log });
    const w = whep;
    new Gauge({ name: 'cascade_whep_sessions', help: 'WHEP players this origin signals for (served here or on relays)', registers: [registry], collect() { this.set(w.size); } });
    app.use(whepRouter(whep, { maxBodyBytes: config.signalling.maxMessageBytes }, { logger: log }));
  }
  app.use(recordingsRouter(recordings, { logger: log, streamOwner }));

  return {
    async close() {
      whip?.close();
      whep?.close();
      rtpIngest?.close();
      await recordings?.close();
    },
  };
}
