import { describe, expect, it } from 'vitest';
import { canonicalFromEncoded, canonicalFromRtp, type FrameCodec } from '../src/integrity/frames.js';
import { FrameAssembler, parseRtp, type AssembledFrame, type RtpPacketView } from '../src/integrity/FrameAssembler.js';

const u8 = (...b: number[]) => Uint8Array.from(b);
const VP8 = 96;
const H264 = 97;
const OPUS = 111;
const codecs = new Map<number, FrameCodec>([[VP8, 'vp8'], [H264, 'h264'], [OPUS, 'opus']]);

function assembler() {
  const frames: AssembledFrame[] = [];
  let now = 0;
  const a = new FrameAssembler({ codecs, maxAgeMs: 1000, now: () => now }, (f) => frames.push(f));
  return { a, frames, advance: (ms: number) => (now += ms) };
}
const pkt = (seq: number, ts: number, payload: Uint8Array, o: Partial<RtpPacketView> = {}): RtpPacketView => ({ ssrc: 1, sequenceNumber: seq & 0xffff, timestamp: ts, marker: false, payloadType: VP8, payload, ...o });

/** A VP8 frame in three packets: descriptors of different lengths (extended, with picture id), payload 1..9. */
function vp8Frame(seq: number, ts: number): RtpPacketView[] {
  return [
    pkt(seq, ts, u8(0x90, 0x80, 0x81, 0x23, 0x10, 1, 2, 3)), // X S, I, 15-bit picture id; payload 0x10 = key frame tag
    pkt(seq + 1, ts, u8(0x80, 0x80, 0x05, 4, 5, 6)), // X, 7-bit picture id
    pkt(seq + 2, ts, u8(0x00, 7, 8, 9), { marker: true }),
  ];
}

describe('FrameAssembler', () => {
  it('rebuilds a VP8 frame without its descriptors, whatever the order, once', () => {
    const { a, frames } = assembler();
    const [p1, p2, p3] = vp8Frame(100, 9000);
    for (const p of [p3!, p1!, p1!, p2!, p3!]) a.push(p);
    expect(frames).toHaveLength(1);
    expect([...frames[0]!.data]).toEqual([0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(frames[0]!.key).toBe(true);
  });

  it('gives up a frame missing a packet (loss is not tampering) and keeps going across a sequence wrap', () => {
    const { a, frames, advance } = assembler();
    const lost = vp8Frame(65_533, 1000);
    a.push(lost[0]!);
    a.push(lost[2]!);
    advance(1500);
    for (const p of vp8Frame(65_534, 4000)) a.push(p); // 65534, 65535, 0
    expect(frames).toHaveLength(1);
    expect(frames[0]!.timestamp).toBe(4000);
    advance(300);
    expect(a.pending).toBe(0);
  });

  it('ignores padding and payload types it does not know (RTX)', () => {
    const { a, frames } = assembler();
    a.push(pkt(1, 1, new Uint8Array(0), { marker: true }));
    a.push(pkt(2, 1, u8(0x10, 1), { payloadType: 120, marker: true }));
    expect(frames).toHaveLength(0);
  });

  it('H.264: a frame starts after a packet of another frame; STAP-A and FU-A come down to the same NAL units as Annex B', () => {
    const { a, frames } = assembler();
    const sps = u8(0x67, 1, 2);
    const pps = u8(0x68, 3);
    const idr = u8(0x65, 10, 11, 12, 13, 14);
    a.push(pkt(9, 100, u8(0x41, 0xaa), { payloadType: H264, marker: true })); // the previous frame's last packet
    const stap = u8(24, 0, sps.length, ...sps, 0, pps.length, ...pps);
    const fuStart = u8(0x7c, 0x85, 10, 11, 12);
    const fuEnd = u8(0x7c, 0x45, 13, 14);
    for (const p of [pkt(12, 200, fuEnd, { payloadType: H264, marker: true }), pkt(10, 200, stap, { payloadType: H264 }), pkt(11, 200, fuStart, { payloadType: H264 })]) a.push(p);
    const last = frames.at(-1)!;
    expect(last.timestamp).toBe(200);
    expect(last.key).toBe(true);
    const annexB = u8(0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, ...sps, 0, 0, 1, ...pps, 0, 0, 0, 1, ...idr, 0);
    expect([...canonicalFromEncoded('h264', annexB)]).toEqual([...last.data]);
    expect([...canonicalFromRtp('h264', [u8(...sps), u8(...pps), u8(...idr)])]).toEqual([...last.data]);
  });

  it('Opus: every packet is a frame', () => {
    const { a, frames } = assembler();
    a.push(pkt(5, 960, u8(1, 2, 3), { payloadType: OPUS }));
    a.push(pkt(5, 960, u8(1, 2, 3), { payloadType: OPUS }));
    a.push(pkt(6, 1920, u8(4), { payloadType: OPUS }));
    expect(frames.map((f) => f.kind)).toEqual(['audio', 'audio']);
  });
});

describe('parseRtp', () => {
  it('reads the header past CSRCs and an extension, without the padding', () => {
    const buf = u8(0xb1, 0x80 | 96, 0x12, 0x34, 0, 0, 1, 0, 0, 0, 0, 7, /* CSRC */ 9, 9, 9, 9, /* ext */ 0xbe, 0xde, 0, 1, 1, 2, 3, 4, /* payload */ 42, 43, /* padding */ 0, 2);
    const r = parseRtp(buf)!;
    expect(r).toMatchObject({ marker: true, payloadType: 96, sequenceNumber: 0x1234, timestamp: 256, ssrc: 7 });
    expect([...r.payload]).toEqual([42, 43]);
    expect(parseRtp(u8(0x80, 96))).toBeUndefined();
  });
});
