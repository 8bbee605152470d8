import { describe, expect, it } from 'vitest';
import { meanInterval, ratioInterval, seededRandom, t95 } from '../../src/bench/capacity/confidence.js';
import type { RampSummary } from '../../src/bench/capacity/ramp.js';
import { rampCapacity } from '../../src/bench/capacity/rampCapacity.js';
import { joinCostMs, windowMedia, type WindowTotals } from '../../src/bench/capacity/realWindow.js';

describe('meanInterval()', () => {
  it('is the mean ± t·s/√n', () => {
    const i = meanInterval([10, 12, 14, 16, 18])!;
    expect(i.mean).toBe(14);
    expect(i.sd).toBeCloseTo(Math.sqrt(10));
    const half = (2.776 * Math.sqrt(10)) / Math.sqrt(5);
    expect(i.lo).toBeCloseTo(14 - half);
    expect(i.hi).toBeCloseTo(14 + half);
  });

  it('collapses to the value with one ramp and is null with none', () => {
    expect(meanInterval([7])).toMatchObject({ n: 1, mean: 7, lo: 7, hi: 7 });
    expect(meanInterval([])).toBeNull();
    expect(meanInterval([NaN])).toBeNull();
  });

  it('uses the normal quantile beyond 30 degrees of freedom', () => {
    expect(t95(4)).toBe(2.776);
    expect(t95(100)).toBe(1.96);
  });
});

describe('ratioInterval()', () => {
  it('gives the ratio of means inside its bootstrap interval, the same for the same seed', () => {
    const a = [1500, 1550, 1480, 1520, 1600];
    const b = [1000, 1020, 980, 1010, 990];
    const r = ratioInterval(a, b)!;
    expect(r.ratio).toBeCloseTo(1530 / 1000);
    expect(r.lo).toBeLessThan(r.ratio);
    expect(r.hi).toBeGreaterThan(r.ratio);
    expect(r.lo).toBeGreaterThan(1.4);
    expect(r.hi).toBeLessThan(1.65);
    expect(ratioInterval(a, b)).toEqual(r);
  });

  it('is wider when the ramps disagree more', () => {
    const tight = ratioInterval([100, 101, 99, 100, 100], [50, 50, 51, 49, 50])!;
    const loose = ratioInterval([60, 140, 90, 110, 100], [30, 70, 40, 60, 50])!;
    expect(loose.hi - loose.lo).toBeGreaterThan(tight.hi - tight.lo);
  });

  it('is null without a baseline', () => {
    expect(ratioInterval([1], [])).toBeNull();
    expect(ratioInterval([1], [0])).toBeNull();
  });

  it('draws from a seeded uniform generator', () => {
    const r = seededRandom(1);
    const v = Array.from({ length: 10_000 }, () => r());
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThan(1);
    expect(v.reduce((a, b) => a + b, 0) / v.length).toBeCloseTo(0.5, 1);
  });
});

function totals(connected: number, packets: number, expected: number, lost: number, stalled = 0, socketDrops = 0): WindowTotals {
  return { connected, sink: { packets, expected, lost, bytes: packets * 1000, decryptFail: 0, stalled, socketDrops } };
}

describe('windowMedia()', () => {
  it('takes loss, packets and bitrate per viewer from two snapshots', () => {
    const w = windowMedia(totals(100, 10_000, 10_000, 0), totals(100, 50_000, 50_100, 100), 4);
    expect(w).toMatchObject({ viewers: 100, silentViewers: 0, expected: 40_100, lost: 100 });
    expect(w.loss).toBeCloseTo(100 / 40_100);
    expect(w.ppsPerViewer).toBeCloseTo(100);
    expect(w.kbpsPerViewer).toBeCloseTo(800);
  });

  it('counts a viewer that receives nothing as losing what a receiving one expected', () => {
    const w = windowMedia(totals(10, 0, 0, 0), totals(10, 900, 900, 0, 1), 1);
    expect(w.silentViewers).toBe(1);
    expect(w.expected).toBe(1000);
    expect(w.lost).toBe(100);
    expect(w.loss).toBeCloseTo(0.1);
  });

  it('is total loss when nobody receives', () => {
    expect(windowMedia(totals(5, 0, 0, 0), totals(5, 0, 0, 0, 5), 1).loss).toBe(1);
  });

  it('takes the packets the sinks’ own sockets dropped out of the server’s loss', () => {
    const w = windowMedia(totals(10, 0, 0, 0, 0, 5), totals(10, 1000, 1000, 30, 0, 25), 1);
    expect(w.sinkDrops).toBe(20);
    expect(w.lost).toBe(10);
  });

  it('never lets repaired packets make loss negative', () => {
    expect(windowMedia(totals(1, 0, 100, 10), totals(1, 200, 200, 5), 1).lost).toBe(0);
  });
});

describe('joinCostMs()', () => {
  it('is the CPU above the steady state, per join', () => {
    // 2 s of joins used 1.2 s of CPU while the steady state is 0.3 of a core: 0.6 s for 100 joins.
    expect(joinCostMs({ cpuSeconds: 1.2, seconds: 2, steadyCpu: 0.3, joins: 100 })).toBeCloseTo(6);
  });

  it('is never negative, and null without joins', () => {
    expect(joinCostMs({ cpuSeconds: 0.1, seconds: 2, steadyCpu: 0.3, joins: 10 })).toBe(0);
    expect(joinCostMs({ cpuSeconds: 1, seconds: 1, steadyCpu: 0, joins: 0 })).toBeNull();
  });
});

describe('rampCapacity()', () => {
  const summary = (o: Partial<RampSummary>): RampSummary => ({ viewersPerCore: 400, cpuPerViewer: 0.002, intercept: 0.02, r2: 0.99, viewersAtCpuLimit: 415, saturated: true, ...o });

  it('is where the CPU fit reaches the limit when the CPU limit stopped the ramp', () => {
    expect(rampCapacity(summary({}), true)).toEqual({ viewers: 415, basis: 'cpu-fit' });
  });

  it('is the last passing step when another limit stopped the ramp first', () => {
    expect(rampCapacity(summary({ viewersPerCore: 300 }), false)).toEqual({ viewers: 300, basis: 'other-limit' });
    // …but never more than the CPU fit allows.
    expect(rampCapacity(summary({ viewersPerCore: 500 }), false)).toEqual({ viewers: 415, basis: 'other-limit' });
  });

  it('is the extrapolated fit when nothing stopped the ramp', () => {
    expect(rampCapacity(summary({ saturated: false, viewersPerCore: 200 }), false)).toEqual({ viewers: 415, basis: 'extrapolated' });
  });
});
