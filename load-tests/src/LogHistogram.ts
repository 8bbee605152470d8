import type { Summary } from './stats.js';

/** Serialized form: sparse [bucket, count] pairs plus exact extremes. */
export interface LogHistogramJSON {
  buckets: [number, number][];
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** Values at or below this land in bucket 0 (ms: far below anything a network shows). */
const FLOOR = 0.01;
/** Relative width of a bucket: percentiles are within ±1 % of the true value. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** ~ FLOOR * 1.02^2000 ≈ 1.6e15: no realistic delay overflows, and the sparse map stays small. */
const MAX_BUCKET = 2000;

/**
 * A mergeable histogram with logarithmic buckets. Each viewer process keeps one per
 * interval and one for the whole run, and the parent merges them: shipping every frame's
 * delay (30 per second per viewer) between processes would cost more than measuring it.
 */
export class LogHistogram {
  #buckets = new Map<number, number>();
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;

  static fromJSON(json: LogHistogramJSON): LogHistogram {
    const h = new LogHistogram();
    h.merge(json);
    return h;
  }

  get count(): number {
    return this.#count;
  }

  add(value: number): void {
    if (!Number.isFinite(value)) return;
    const v = Math.max(0, value);
    const b = bucketOf(v);
    this.#buckets.set(b, (this.#buckets.get(b) ?? 0) + 1);
    this.#count++;
    this.#sum += v;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
  }

  merge(other: LogHistogram | LogHistogramJSON): void {
    const json = other instanceof LogHistogram ? other.toJSON() : other;
    if (json.count === 0) return;
    for (const [b, c] of json.buckets) this.#buckets.set(b, (this.#buckets.get(b) ?? 0) + c);
    this.#count += json.count;
    this.#sum += json.sum;
    this.#min = Math.min(this.#min, json.min);
    this.#max = Math.max(this.#max, json.max);
  }

  /** Value at percentile p (0..100): the bucket's midpoint, clamped to the exact min/max. */
  percentile(p: number): number {
    if (this.#count === 0) return NaN;
    if (p <= 0) return this.#min;
    if (p >= 100) return this.#max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (const b of [...this.#buckets.keys()].sort((x, y) => x - y)) {
      seen += this.#buckets.get(b)!;
      if (seen >= rank) return Math.min(this.#max, Math.max(this.#min, midpointOf(b)));
    }
    return this.#max;
  }

  summary(): Summary | null {
    if (this.#count === 0) return null;
    return {
      count: this.#count,
      min: this.#min,
      max: this.#max,
      mean: this.#sum / this.#count,
      p50: this.percentile(50),
      p95: this.percentile(95),
      p99: this.percentile(99),
    };
  }

  /** [lower edge, upper edge, count] per non-empty bucket, ascending (for plots). */
  bins(): [number, number, number][] {
    return [...this.#buckets.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([b, c]) => [lowerEdgeOf(b), lowerEdgeOf(b + 1), c]);
  }

  toJSON(): LogHistogramJSON {
    return {
      buckets: [...this.#buckets.entries()].sort((a, b) => a[0] - b[0]),
      count: this.#count,
      sum: this.#sum,
      min: this.#count ? this.#min : 0,
      max: this.#count ? this.#max : 0,
    };
  }

  reset(): void {
    this.#buckets.clear();
    this.#count = 0;
    this.#sum = 0;
    this.#min = Infinity;
    this.#max = -Infinity;
  }
}

function bucketOf(v: number): number {
  if (v <= FLOOR) return 0;
  return Math.min(MAX_BUCKET, 1 + Math.floor(Math.log(v / FLOOR) / LOG_GROWTH));
}

function lowerEdgeOf(b: number): number {
  return b <= 0 ? 0 : FLOOR * Math.pow(GROWTH, b - 1);
}

function midpointOf(b: number): number {
  return b <= 0 ? FLOOR / 2 : FLOOR * Math.pow(GROWTH, b - 0.5);
}
