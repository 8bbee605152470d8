import { describe, expect, it } from 'vitest';
import { cdf, histogram, percentile, summarize } from '../src/stats.js';

describe('percentile()', () => {
  it('uses the nearest rank, so every figure is an observed value', () => {
    const v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(v, 50)).toBe(5);
    expect(percentile(v, 95)).toBe(10);
    expect(percentile(v, 10)).toBe(1);
    expect(percentile(v, 11)).toBe(2);
    expect(percentile(v, 0)).toBe(1);
    expect(percentile(v, 100)).toBe(10);
  });

  it('is NaN for no values', () => {
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('summarize()', () => {
  it('gives count, extremes, mean and p50/p95/p99 of unsorted input', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(summarize(v)).toEqual({ count: 100, min: 1, max: 100, mean: 50.5, p50: 50, p95: 95, p99: 99 });
  });

  it('ignores non-finite values and is null when none is left', () => {
    expect(summarize([NaN, Infinity, 3])).toMatchObject({ count: 1, p50: 3 });
    expect(summarize([NaN])).toBeNull();
    expect(summarize([])).toBeNull();
  });
});

describe('histogram()', () => {
  it('puts each value in one equal-width bin, the maximum in the last', () => {
    const h = histogram([0, 1, 2, 3, 4, 10], 5);
    expect(h.edges).toEqual([0, 2, 4, 6, 8, 10]);
    expect(h.counts).toEqual([2, 2, 1, 0, 1]);
    expect(h.counts.reduce((a, b) => a + b)).toBe(6);
  });

  it('gives a single value a visible bin and no values no bins', () => {
    expect(histogram([7, 7], 3).counts.reduce((a, b) => a + b)).toBe(2);
    expect(histogram([], 3)).toEqual({ edges: [], counts: [] });
  });
});

describe('cdf()', () => {
  it('rises to 1 at the maximum', () => {
    expect(cdf([3, 1, 2, 4])).toEqual([
      [1, 0.25],
      [2, 0.5],
      [3, 0.75],
      [4, 1],
    ]);
  });

  it('is thinned to about maxPoints and still ends at (max, 1)', () => {
    const pts = cdf(
      Array.from({ length: 10_000 }, (_, i) => i),
      100,
    );
    expect(pts.length).toBeLessThanOrEqual(101);
    expect(pts[pts.length - 1]).toEqual([9999, 1]);
  });
});
