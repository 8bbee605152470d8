import { FrameAssembler, frameCodecOf, type AssembledFrame, type FrameCodec } from '@cascade/protocol';

/** What a Node WebRTC library's receiving track gives (werift's MediaStreamTrack). */
interface RtpTrack {
  onReceiveRtp: { subscribe(cb: (rtp: { header: { ssrc: number; sequenceNumber: number; timestamp: number; marker: boolean; payloadType: number }; payload: Uint8Array }) => void): unknown };
}

/** Whether frames of this track can be rebuilt here (a Node track that hands over its RTP). */
export function rtpTrackAvailable(track: unknown): track is RtpTrack {
  return typeof (track as RtpTrack | undefined)?.onReceiveRtp?.subscribe === 'function';
}

/**
 * Frames of a Node client's track, rebuilt from the RTP it receives (loss, repairs and
 * reordering handled as at the origin). Nothing is shown in Node, so nothing is held: frames are
 * only checked, and counted.
 */
export function watchRtpFrames(
  track: RtpTrack,
  codecs: { mimeType: string; payloadType: number }[],
  onFrame: (frame: AssembledFrame) => void,
  /** Each packet of the media (retransmissions and other payload types left out), whole frame or not. */
  onPacket?: () => void,
): () => void {
  const map = new Map<number, FrameCodec>();
  for (const c of codecs) {
    const codec = frameCodecOf(c.mimeType);
    if (codec) map.set(c.payloadType, codec);
  }
  const assembler = new FrameAssembler({ codecs: map }, onFrame);
  let stopped = false;
  const sub = track.onReceiveRtp.subscribe((rtp) => {
    if (stopped) return;
    if (map.has(rtp.header.payloadType)) onPacket?.();
    assembler.push({ ...rtp.header, payload: rtp.payload });
  }) as { unSubscribe?: () => void } | undefined;
  return () => {
    stopped = true;
    sub?.unSubscribe?.();
  };
}
