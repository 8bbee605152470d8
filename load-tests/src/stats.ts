/** Percentiles, summaries, histograms and CDFs over plain number arrays. */

export interface Summary {
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

/**
 * Nearest-rank percentile of an ascending array (p in 0..100). Nearest rank rather than
 * interpolation: every figure in the report is a value some viewer actually saw.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  if (p <= 0) return sorted[0]!;
  if (p >= 100) return sorted[sorted.length - 1]!;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.max(0, rank - 1)]!;
}

/** count/min/max/mean/p50/p95/p99, or null when there is no finite value. */
export function summarize(values: readonly number[]): Summary | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  let sum = 0;
  for (const x of v) sum += x;
  return {
    count: v.length,
    min: v[0]!,
    max: v[v.length - 1]!,
    mean: sum / v.length,
    p50: percentile(v, 50),
    p95: percentile(v, 95),
    p99: percentile(v, 99),
  };
}

export interface Bins {
  /** binCount + 1 ascending edges; bin i is [edges[i], edges[i+1]), the last one closed. */
  edges: number[];
  counts: number[];
}

/** Equal-width bins between the smallest and largest finite value. */
export function histogram(values: readonly number[], binCount: number): Bins {
  const v = values.filter((x) => Number.isFinite(x));
  const n = Math.max(1, Math.min(1000, Math.floor(binCount)));
  if (v.length === 0) return { edges: [], counts: [] };
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  // A single distinct value still gets a visible bar.
  if (hi === lo) hi = lo + 1;
  const width = (hi - lo) / n;
  const edges = Array.from({ length: n + 1 }, (_, i) => lo + i * width);
  const counts = new Array<number>(n).fill(0);
  for (const x of v) counts[Math.min(n - 1, Math.floor((x - lo) / width))]!++;
  return { edges, counts };
}

/** Empirical CDF as [value, fraction ≤ value] points, thinned to at most maxPoints. */
export function cdf(values: readonly number[], maxPoints = 200): [number, number][] {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return [];
  const step = Math.max(1, Math.ceil(v.length / Math.max(2, maxPoints)));
  const out: [number, number][] = [];
  for (let i = step - 1; i < v.length; i += step) out.push([v[i]!, (i + 1) / v.length]);
  if (out[out.length - 1]![1] !== 1) out.push([v[v.length - 1]!, 1]);
  return out;
}
