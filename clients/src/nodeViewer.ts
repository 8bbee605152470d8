import * as werift from 'werift';
import WebSocket from 'ws';
import { CascadeEvent, Watch, watch, type WatchOptions } from '@cascade/client-sdk';
import type { Logger } from '@cascade/protocol';
import { isVp8KeyframeStart, vp8KeyframeSize } from './vp8.js';
import { installWeriftGlobals } from './weriftGlobals.js';

export interface NodeViewer {
  watch: Watch;
  /** RTP packets and video frames (marker bits) received so far, across reconnections. */
  counters: {
    packets: number;
    /** Of those, RTP packets of video tracks. */
    videoPackets: number;
    bytes: number;
    frames: number;
    /** Complete key frames (the ones a decoder could restart from). */
    keyframes: number;
    /** Date.now() when the first complete key frame arrived (also when it came before start() resolved). */
    firstKeyframeAt: number | undefined;
    /** The height of the latest key frame (which simulcast layer it came on), once one has come. */
    lastKeyframeHeight: number | undefined;
    reconnects: number;
    ended: boolean;
    nodeIds: string[];
    /** Why each node in nodeIds was taken (joined, reconnected, or the reason of a planned move). */
    nodeReasons: string[];
    /** Why each reconnect episode started (code and message), for failure messages. */
    reconnectCauses: string[];
    /** What the SDK logged at warn level or above (e.g. a planned move that failed), for failure messages. */
    warnings: string[];
    /** Every CascadeEvent.Integrity, with when it came (Date.now()). */
    integrity: { state: string; code?: string; detail?: string; nodeId: string; at: number; counts: string }[];
  };
  /**
   * Called with a timestamp (Date.now()) when each video frame completes; `key` for key frames;
   * `track` counts video tracks (it grows each time a new consumer, e.g. on another node, starts).
   */
  onFrame?: (at: number, key: boolean, track: number) => void;
  /** Video tracks received so far (see onFrame). */
  videoTracks: number;
  /**
   * The video track that delivered the latest complete frame. After a failover it is the new
   * node's track; a page's `<video>` plays it only if it sits in `watch.mediaStream`.
   */
  liveVideoTrack: MediaStreamTrack | undefined;
  stop(): void;
}

/**
 * A cheap receive-only viewer (werift, no decoding) going through the real SDK and viewer
 * flow: controller placement, redirect, reconnection.
 */
export async function startNodeViewer(url: string, streamId: string, options: Pick<WatchOptions, 'keepAlive' | 'timeoutMs' | 'integrity' | 'quality'> = {}): Promise<NodeViewer> {
  installWeriftGlobals();
  const counters = { packets: 0, videoPackets: 0, bytes: 0, frames: 0, keyframes: 0, firstKeyframeAt: undefined as number | undefined, lastKeyframeHeight: undefined as number | undefined, reconnects: 0, ended: false, nodeIds: [] as string[], nodeReasons: [] as string[], reconnectCauses: [] as string[], warnings: [] as string[], integrity: [] as NodeViewer['counters']['integrity'] };
  const viewer: NodeViewer = { watch: undefined as unknown as Watch, counters, videoTracks: 0, liveVideoTrack: undefined, stop: () => w.stop() };
  const w = new Watch({
    url,
    streamId,
    WebSocket: WebSocket as never,
    handlerName: 'Chrome111',
    MediaStream: werift.MediaStream as never,
    logger: warningsInto(counters.warnings),
    ...options,
  });
  // A track shown again (its replacement's consumer closed first) is read once.
  const reading = new WeakSet<object>();
  w.on(CascadeEvent.Track, (track) => {
    const t = track as unknown as werift.MediaStreamTrack;
    if (reading.has(t)) return;
    reading.add(t);
    // Per track: a key frame is complete at the marker of the frame whose first packet says so.
    let inKeyframe = false;
    const seq = t.kind === 'video' ? ++viewer.videoTracks : 0;
    t.onReceiveRtp.subscribe((rtp) => {
      counters.packets++;
      counters.bytes += rtp.payload.length;
      if (t.kind !== 'video') return;
      counters.videoPackets++;
      if (isVp8KeyframeStart(rtp.payload)) {
        inKeyframe = true;
        counters.lastKeyframeHeight = vp8KeyframeSize(rtp.payload)?.height ?? counters.lastKeyframeHeight;
      }
      if (!rtp.header.marker) return;
      counters.frames++;
      const at = Date.now();
      if (inKeyframe && counters.keyframes++ === 0) counters.firstKeyframeAt = at;
      viewer.liveVideoTrack = track;
      viewer.onFrame?.(at, inKeyframe, seq);
      inKeyframe = false;
    });
  });
  w.on(CascadeEvent.NodeChanged, (id, why) => {
    counters.nodeIds.push(id);
    counters.nodeReasons.push(`${new Date().toISOString().slice(11, 23)} ${why}`);
  });
  w.on(CascadeEvent.Reconnected, () => counters.reconnects++);
  w.on(CascadeEvent.Reconnecting, (cause) => counters.reconnectCauses.push(`${(cause as { code?: string }).code ?? ''} ${cause.message}`));
  w.on(CascadeEvent.Ended, () => (counters.ended = true));
  w.on(CascadeEvent.Integrity, (s) =>
    counters.integrity.push({
      state: s.state,
      nodeId: s.nodeId,
      at: Date.now(),
      // What the digest channel had delivered on that node by then (for the reports of false alarms).
      counts: `${s.batches} batches, ${s.batchesMissed} missed, longest gap ${s.batchGapMaxMs} ms, ${s.framesVerified} frames verified, ${s.framesExpired} expired`,
      ...(s.code ? { code: s.code } : {}),
      ...(s.detail ? { detail: s.detail } : {}),
    }),
  );
  viewer.watch = w;
  await w.start();
  return viewer;
}

/** A Logger that keeps warn and error lines (UTC time, message and fields) in `sink`, the last 20. */
function warningsInto(sink: string[]): Logger {
  const keep = (obj: object, msg: string) => {
    sink.push(`${new Date().toISOString().slice(11, 23)} ${msg} ${JSON.stringify(obj)}`);
    if (sink.length > 20) sink.shift();
  };
  const logger: Logger = { debug() {}, info() {}, warn: keep, error: keep, child: () => logger };
  return logger;
}

export { watch };
