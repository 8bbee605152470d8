/**
 * Token buckets for log lines that a remote party can cause (refused messages, refused
 * connections), one per kind (an error code): the first lines of each kind are logged, so
 * every kind of bad input shows in the log, but a flood of one kind costs at most `perSec`
 * lines a second, and the next line of that kind says how many were left out meanwhile.
 * Metrics still count every one. Kinds must come from a bounded set (error codes), never
 * from client input.
 */
export class LogBudget {
  readonly #perSec: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; last: number; suppressed: number }>();

  /** `perSec` 0 logs nothing (everything is only counted). Burst default 4 × perSec. */
  constructor(perSec: number, options: { burst?: number; now?: () => number } = {}) {
    this.#perSec = Math.max(0, perSec);
    this.#burst = options.burst ?? this.#perSec * 4;
    this.#now = options.now ?? Date.now;
  }

  /** Lines left out (of every kind) and not yet reported. */
  get suppressed(): number {
    let n = 0;
    for (const b of this.#buckets.values()) n += b.suppressed;
    return n;
  }

  /**
   * Whether one more line of this kind may be logged now: `undefined` if not (it is counted as
   * suppressed), otherwise the number of lines of this kind suppressed before it (to be logged
   * with it), reset to 0.
   */
  take(kind = ''): number | undefined {
    const now = this.#now();
    let b = this.#buckets.get(kind);
    if (!b) this.#buckets.set(kind, (b = { tokens: this.#burst, last: now, suppressed: 0 }));
    b.tokens = Math.min(this.#burst, b.tokens + ((now - b.last) / 1000) * this.#perSec);
    b.last = now;
    if (b.tokens < 1) {
      b.suppressed++;
      return undefined;
    }
    b.tokens -= 1;
    const n = b.suppressed;
    b.suppressed = 0;
    return n;
  }
}
