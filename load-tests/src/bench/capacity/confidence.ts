/**
 * Confidence intervals for the capacity benchmark's repeated ramps: Student's t interval of a
 * mean (a handful of ramps per server), and a bootstrap interval of the ratio of two means
 * (Cascade / Janus), with a seeded generator so a run's figures can be recomputed exactly.
 */

export interface Interval {
  n: number;
  mean: number;
  /** Sample standard deviation (0 with one value). */
  sd: number;
  /** Bounds of the two-sided interval (equal to the mean with one value). */
  lo: number;
  hi: number;
  level: number;
}

/** Two-sided 95 % quantiles of Student's t by degrees of freedom (1..30); beyond, the normal's. */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export function t95(df: number): number {
  if (df < 1) return NaN;
  return df <= T95.length ? T95[df - 1]! : 1.96;
}

/** Mean with its 95 % t interval; null without values. */
export function meanInterval(values: readonly number[]): Interval | null {
  const v = values.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { n, mean, sd: 0, lo: mean, hi: mean, level: 0.95 };
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = (t95(n - 1) * sd) / Math.sqrt(n);
  return { n, mean, sd, lo: mean - half, hi: mean + half, level: 0.95 };
}

/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RatioInterval {
  /** mean(a) / mean(b). */
  ratio: number;
  /** Percentile bootstrap bounds (95 %); equal to the ratio when either side has one value. */
  lo: number;
  hi: number;
  resamples: number;
  level: number;
}

/**
 * Ratio of the means of a and b with a percentile bootstrap interval: each side resampled
 * with replacement on its own (the ramps are independent), `resamples` times.
 */
export function ratioInterval(a: readonly number[], b: readonly number[], resamples = 4000, seed = 18): RatioInterval | null {
  const mean = (v: readonly number[]) => v.reduce((x, y) => x + y, 0) / v.length;
  if (a.length === 0 || b.length === 0) return null;
  const mb = mean(b);
  if (!(mb > 0)) return null;
  const ratio = mean(a) / mb;
  if (a.length < 2 && b.length < 2) return { ratio, lo: ratio, hi: ratio, resamples: 0, level: 0.95 };
  const rnd = seededRandom(seed);
  const draw = (v: readonly number[]) => {
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[Math.floor(rnd() * v.length)]!;
    return s / v.length;
  };
  const ratios: number[] = [];
  for (let i = 0; i < resamples; i++) {
    const d = draw(b);
    if (d > 0) ratios.push(draw(a) / d);
  }
  ratios.sort((x, y) => x - y);
  const at = (q: number) => ratios[Math.min(ratios.length - 1, Math.max(0, Math.floor(q * ratios.length)))]!;
  return { ratio, lo: at(0.025), hi: at(0.975), resamples: ratios.length, level: 0.95 };
}
