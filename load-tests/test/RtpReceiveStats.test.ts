import { describe, expect, it } from 'vitest';
import { LogHistogram } from '../src/LogHistogram.js';
import { RtpReceiveStats, type RtpPacketInfo } from '../src/RtpReceiveStats.js';

const pkt = (sequenceNumber: number, o: Partial<RtpPacketInfo> = {}): RtpPacketInfo => ({
  ssrc: 1,
  sequenceNumber: sequenceNumber & 0xffff,
  timestamp: 0,
  marker: true,
  bytes: 1000,
  ...o,
});

describe('RtpReceiveStats: loss from sequence numbers', () => {
  it('counts the packets missing from a gap', () => {
    const s = new RtpReceiveStats();
    for (let i = 0; i < 100; i++) if (i < 10 || i > 12) s.onPacket(pkt(i, { timestamp: i * 3000 }), i * 33);
    expect(s.summary()).toMatchObject({ packets: 97, expected: 100, lost: 3 });
    expect(s.summary().lossFraction).toBeCloseTo(0.03);
  });

  it('crosses the 16-bit wrap without inventing loss', () => {
    const s = new RtpReceiveStats();
    for (let i = 65530; i < 65542; i++) s.onPacket(pkt(i), i);
    expect(s.summary()).toMatchObject({ expected: 12, lost: 0 });
  });

  it('counts a gap that spans the wrap', () => {
    const s = new RtpReceiveStats();
    s.onPacket(pkt(65534), 0);
    s.onPacket(pkt(2), 1);
    expect(s.summary()).toMatchObject({ expected: 5, lost: 3 });
  });

  it('does not count reordered packets as lost', () => {
    const s = new RtpReceiveStats();
    for (const seq of [10, 12, 11, 13, 9]) s.onPacket(pkt(seq), seq);
    expect(s.summary()).toMatchObject({ packets: 5, expected: 5, lost: 0 });
  });

  it('counts duplicates apart and only once in the totals', () => {
    const s = new RtpReceiveStats();
    for (const seq of [1, 2, 2, 3, 3, 3]) s.onPacket(pkt(seq), seq);
    expect(s.summary()).toMatchObject({ packets: 3, duplicates: 3, expected: 3, lost: 0, bytes: 3000 });
  });

  it('starts a new sequence space when the SSRC changes (moved to another node)', () => {
    const s = new RtpReceiveStats();
    for (let i = 0; i < 10; i++) s.onPacket(pkt(100 + i, { ssrc: 1 }), i);
    for (let i = 0; i < 10; i++) if (i !== 5) s.onPacket(pkt(5000 + i, { ssrc: 2 }), 10 + i);
    expect(s.summary()).toMatchObject({ packets: 19, expected: 20, lost: 1 });
  });

  it('reports each interval (RFC 3550 A.3) and resets it', () => {
    const s = new RtpReceiveStats();
    for (let i = 0; i < 10; i++) if (i !== 4) s.onPacket(pkt(i), i);
    expect(s.takeInterval()).toEqual({ packets: 9, bytes: 9000, expected: 10, lost: 1, frames: 9 });
    for (let i = 10; i < 20; i++) s.onPacket(pkt(i), i);
    expect(s.takeInterval()).toEqual({ packets: 10, bytes: 10000, expected: 10, lost: 0, frames: 10 });
    expect(s.takeInterval()).toEqual({ packets: 0, bytes: 0, expected: 0, lost: 0, frames: 0 });
  });
});

describe('RtpReceiveStats: jitter (RFC 3550 A.8)', () => {
  it('is 0 when every packet has the same transit time', () => {
    const s = new RtpReceiveStats();
    for (let i = 0; i < 100; i++) s.onPacket(pkt(i, { timestamp: i * 3000 }), 1000 + i * (1000 / 30));
    expect(s.summary().jitterMs).toBeCloseTo(0, 3);
  });

  it('converges to the transit variation: ±10 ms alternating gives ~10 ms', () => {
    const s = new RtpReceiveStats();
    for (let i = 0; i < 300; i++) s.onPacket(pkt(i, { timestamp: i * 3000 }), 1000 + i * (1000 / 30) + (i % 2) * 10);
    expect(s.summary().jitterMs).toBeGreaterThan(9.9);
    expect(s.summary().jitterMs).toBeLessThan(10.01);
    expect(s.summary().jitterMaxMs).toBeGreaterThanOrEqual(s.summary().jitterMs);
  });

  it('ignores the spread of packets within one frame (same timestamp)', () => {
    const s = new RtpReceiveStats();
    let seq = 0;
    for (let f = 0; f < 100; f++) {
      for (let k = 0; k < 3; k++) s.onPacket(pkt(seq++, { timestamp: f * 3000, marker: k === 2 }), 1000 + f * (1000 / 30) + k * 5);
    }
    expect(s.summary().jitterMs).toBeCloseTo(0, 3);
    expect(s.frames).toBe(100);
  });

  it('handles RTP timestamp wrap', () => {
    const s = new RtpReceiveStats();
    for (let i = 0; i < 50; i++) s.onPacket(pkt(i, { timestamp: (2 ** 32 - 25 * 3000 + i * 3000) >>> 0 }), 5000 + i * (1000 / 30));
    expect(s.summary().jitterMs).toBeCloseTo(0, 3);
  });
});

describe('RtpReceiveStats: frames and freezes', () => {
  it('takes the first marker packet as the first frame', () => {
    const s = new RtpReceiveStats();
    s.onPacket(pkt(0, { marker: false }), 100);
    s.onPacket(pkt(1, { marker: true }), 120);
    expect(s.summary()).toMatchObject({ firstPacketAt: 100, firstFrameAt: 120, frames: 1 });
  });

  it('counts a gap between frames above the threshold as one freeze', () => {
    const s = new RtpReceiveStats({ freezeGapMs: 500 });
    let t = 0;
    for (let i = 0; i < 10; i++) s.onPacket(pkt(i), (t += 33));
    s.onPacket(pkt(10), (t += 600));
    for (let i = 11; i < 20; i++) s.onPacket(pkt(i), (t += 33));
    expect(s.summary()).toMatchObject({ freezes: 1, freezeTotalMs: 600, longestFreezeMs: 600 });
  });

  it('counts a stream that stopped before the end as a freeze, once', () => {
    const s = new RtpReceiveStats({ freezeGapMs: 500 });
    s.onPacket(pkt(0), 0);
    s.finish(2000);
    s.finish(2001);
    expect(s.summary()).toMatchObject({ freezes: 1, freezeTotalMs: 2000 });
  });

  it('gives the mean bitrate between first and last packet', () => {
    const s = new RtpReceiveStats();
    for (let i = 0; i <= 100; i++) s.onPacket(pkt(i, { bytes: 1250 }), i * 10);
    // 101 × 1250 B over 1 s
    expect(s.summary().bitrateKbps).toBeCloseTo((101 * 1250 * 8) / 1000, 6);
  });
});

describe('RtpReceiveStats: end-to-end delay from stamped timestamps', () => {
  const stamp = (ms: number) => Math.round(ms * 90) >>> 0;

  it('is arrival minus stamp per completed frame', () => {
    const s = new RtpReceiveStats({ stamped: true });
    const sink = new LogHistogram();
    const t0 = 1_795_000_000_000;
    for (let i = 0; i < 30; i++) {
      const sent = t0 + i * 33;
      s.onPacket(pkt(2 * i, { timestamp: stamp(sent), marker: false }), sent + 1);
      s.onPacket(pkt(2 * i + 1, { timestamp: stamp(sent), marker: true }), sent + 4);
    }
    s.takeInterval(sink);
    const d = s.summary().delay!;
    expect(d.count).toBe(30);
    expect(d.p50).toBeCloseTo(4, 1);
    expect(sink.count).toBe(30);
  });

  it('survives the 32-bit wrap of the stamp', () => {
    const s = new RtpReceiveStats({ stamped: true });
    const sent = 2 ** 32 / 90 - 1; // stamp just below 2^32; the arrival wraps
    s.onPacket(pkt(0, { timestamp: stamp(sent) }), sent + 5);
    expect(s.summary().delay!.p50).toBeCloseTo(5, 1);
  });

  it('rejects stamps more than a minute off (the stream is not ours)', () => {
    const s = new RtpReceiveStats({ stamped: true });
    s.onPacket(pkt(0, { timestamp: 12345 }), 1_795_000_000_000);
    expect(s.summary()).toMatchObject({ delay: null, implausibleDelays: 1 });
  });

  it('reports no delay for unstamped streams', () => {
    const s = new RtpReceiveStats({ stamped: false });
    s.onPacket(pkt(0, { timestamp: stamp(1000) }), 1005);
    expect(s.summary().delay).toBeNull();
  });
});
