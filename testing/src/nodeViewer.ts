import * as werift from 'werift';
import WebSocket from 'ws';
import { CascadeEvent, Watch, watch } from '@cascade/client-sdk';

let installed = false;
/** mediasoup-client runs on werift once its WebRTC classes are global. */
export function installWerift(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as Record<string, unknown>;
  for (const k of ['RTCPeerConnection', 'RTCSessionDescription', 'RTCIceCandidate', 'MediaStream', 'MediaStreamTrack', 'RTCRtpSender', 'RTCRtpReceiver', 'RTCRtpTransceiver']) {
    g[k] = (werift as unknown as Record<string, unknown>)[k];
  }
}

export interface NodeViewer {
  watch: Watch;
  /** RTP packets and video frames (marker bits) received so far, across reconnections. */
  counters: { packets: number; bytes: number; frames: number; reconnects: number; ended: boolean; nodeIds: string[] };
  stop(): void;
}

/**
 * A cheap receive-only viewer (werift, no decoding) going through the real SDK and viewer
 * flow: controller placement, redirect, reconnection.
 */
export async function startNodeViewer(url: string, streamId: string): Promise<NodeViewer> {
  installWerift();
  const counters = { packets: 0, bytes: 0, frames: 0, reconnects: 0, ended: false, nodeIds: [] as string[] };
  const w = new Watch({
    url,
    streamId,
    WebSocket: WebSocket as never,
    handlerName: 'Chrome111',
    MediaStream: werift.MediaStream as never,
  });
  w.on(CascadeEvent.Track, (track) => {
    const t = track as unknown as werift.MediaStreamTrack;
    t.onReceiveRtp.subscribe((rtp) => {
      counters.packets++;
      counters.bytes += rtp.payload.length;
      if (t.kind === 'video' && rtp.header.marker) counters.frames++;
    });
  });
  w.on(CascadeEvent.NodeChanged, (id) => counters.nodeIds.push(id));
  w.on(CascadeEvent.Reconnected, () => counters.reconnects++);
  w.on(CascadeEvent.Ended, () => (counters.ended = true));
  await w.start();
  return { watch: w, counters, stop: () => w.stop() };
}

export { watch };
