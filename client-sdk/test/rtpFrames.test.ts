import { describe, expect, it } from 'vitest';
import { watchRtpFrames } from '../src/integrity/rtpFrames.js';

type Rtp = { header: { ssrc: number; sequenceNumber: number; timestamp: number; marker: boolean; payloadType: number }; payload: Uint8Array };

/** A werift-like track whose RTP the test hands over. */
function fakeTrack() {
  let cb: ((rtp: Rtp) => void) | undefined;
  return {
    onReceiveRtp: { subscribe: (f: (rtp: Rtp) => void) => ((cb = f), { unSubscribe: () => (cb = undefined) }) },
    push: (rtp: Rtp) => cb?.(rtp),
  };
}

describe('watchRtpFrames (Node clients)', () => {
  it('counts every media packet, whole frame or not, and leaves other payload types (RTX) out; nothing once stopped', () => {
    const track = fakeTrack();
    let packets = 0;
    const frames: unknown[] = [];
    const stop = watchRtpFrames(track, [{ mimeType: 'video/VP8', payloadType: 96 }, { mimeType: 'video/rtx', payloadType: 97 }], (f) => frames.push(f), () => packets++);
    // The middle of a frame (its first packet and marker never come): a packet, no frame.
    const rtp = (seq: number, pt: number): Rtp => ({ header: { ssrc: 1, sequenceNumber: seq, timestamp: 3000, marker: false, payloadType: pt }, payload: new Uint8Array([0x00, 0x01, 0x02]) });
    track.push(rtp(10, 96));
    track.push(rtp(11, 96));
    track.push(rtp(12, 97));
    expect(packets).toBe(2);
    expect(frames).toHaveLength(0);
    stop();
    track.push(rtp(13, 96));
    expect(packets).toBe(2);
  });
});
