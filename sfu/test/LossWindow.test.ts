import { describe, expect, it } from 'vitest';
import { LossWindow } from '../src/LossWindow.js';

const one = (received: number, lost: number) => new Map([['p', { received, lost }]]);

describe('LossWindow', () => {
  it("losses counted only at receiver reports (every 0.7-1.4 s) still come out near the real rate at every one-second sample", () => {
    // 200 packets a second, 9 % of them lost; mediasoup adds the losses only when it writes a report.
    const reports = [700, 2100, 2800, 4200, 4900, 6300, 7000, 8400, 9100, 10_500, 11_200, 12_600];
    const w = new LossWindow(4000);
    const perBeat = new LossWindow(1000);
    const rates: number[] = [];
    const beats: number[] = [];
    for (let t = 0; t <= 13_000; t += 1000) {
      const received = t * 0.2;
      const lastReport = Math.max(0, ...reports.filter((r) => r <= t));
      const lost = lastReport * 0.2 * 0.09;
      rates.push(w.add(t, one(received, lost)));
      beats.push(perBeat.add(t, one(received, lost)));
    }
    // Heartbeat to heartbeat the rate falls to 0 now and then (what kept a lossy relay from demotion)...
    expect(beats.slice(4).some((r) => r === 0)).toBe(true);
    // ...over the window, never: every sample once the window is full says 5-14 %.
    for (const r of rates.slice(4)) {
      expect(r).toBeGreaterThan(0.05);
      expect(r).toBeLessThan(0.14);
    }
  });

  it('measures a new source from its first sample, forgets a source that went, and never goes below zero', () => {
    const w = new LossWindow(4000);
    expect(w.add(0, one(0, 0))).toBe(0);
    expect(w.add(1000, one(100, 10))).toBeCloseTo(10 / 110);
    // Losses taken back (late packets counted after all): no negative share.
    expect(w.add(2000, new Map([['p', { received: 300, lost: 0 }], ['q', { received: 50, lost: 50 }]]))).toBeCloseTo(0);
    // p gone: only q counts, from its own first sample (a base of 50/50).
    expect(w.add(3000, new Map([['q', { received: 150, lost: 50 }]]))).toBe(0);
    expect(w.add(4000, new Map([['q', { received: 200, lost: 100 }]]))).toBeCloseTo(50 / 200);
    expect(w.add(5000, new Map())).toBe(0);
  });
});
