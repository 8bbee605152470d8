import { describe, expect, it } from 'vitest';
import { LogHistogram } from '../src/LogHistogram.js';
import { percentile } from '../src/stats.js';

/** Deterministic pseudo-random numbers (no flaky tests). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('LogHistogram', () => {
  it('percentiles are within 2 % of the exact ones', () => {
    const rnd = lcg(42);
    const values = Array.from({ length: 5000 }, () => 0.5 + rnd() * rnd() * 300);
    const h = new LogHistogram();
    for (const v of values) h.add(v);
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [1, 25, 50, 90, 95, 99]) {
      const exact = percentile(sorted, p);
      expect(Math.abs(h.percentile(p) - exact) / exact).toBeLessThan(0.02);
    }
    expect(h.percentile(0)).toBe(sorted[0]);
    expect(h.percentile(100)).toBe(sorted[sorted.length - 1]);
  });

  it('merging two histograms equals one fed with both halves', () => {
    const rnd = lcg(7);
    const a = new LogHistogram();
    const b = new LogHistogram();
    const all = new LogHistogram();
    for (let i = 0; i < 1000; i++) {
      const v = rnd() * 50;
      (i % 2 ? a : b).add(v);
      all.add(v);
    }
    const merged = new LogHistogram();
    merged.merge(a);
    merged.merge(b.toJSON());
    expect(merged.toJSON()).toEqual(all.toJSON());
  });

  it('survives a JSON round trip (what crosses the process boundary)', () => {
    const h = new LogHistogram();
    for (const v of [0, 0.001, 1, 2, 3, 1000]) h.add(v);
    const back = LogHistogram.fromJSON(JSON.parse(JSON.stringify(h.toJSON())));
    expect(back.summary()).toEqual(h.summary());
  });

  it('counts negatives as 0 and ignores non-finite values', () => {
    const h = new LogHistogram();
    h.add(-3);
    h.add(NaN);
    h.add(Infinity);
    expect(h.count).toBe(1);
    expect(h.summary()).toMatchObject({ min: 0, max: 0 });
  });

  it('is empty after reset() and summarises to null', () => {
    const h = new LogHistogram();
    h.add(5);
    h.reset();
    expect(h.count).toBe(0);
    expect(h.summary()).toBeNull();
    expect(h.percentile(50)).toBeNaN();
    expect(h.toJSON()).toEqual({ buckets: [], count: 0, sum: 0, min: 0, max: 0 });
  });

  it('bins() are ascending, contiguous per bucket and hold every count', () => {
    const h = new LogHistogram();
    for (const v of [1, 1, 2, 10, 100]) h.add(v);
    const bins = h.bins();
    expect(bins.reduce((n, b) => n + b[2], 0)).toBe(5);
    for (const [lo, hi] of bins) expect(hi).toBeGreaterThan(lo);
    for (let i = 1; i < bins.length; i++) expect(bins[i]![0]).toBeGreaterThanOrEqual(bins[i - 1]![1]);
  });
});
