import { KeyedTokenBucket } from './KeyedTokenBucket.js';

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
  readonly #now: () => number;
  readonly #buckets: KeyedTokenBucket | undefined;
  readonly #suppressed = new Map<string, number>();

  /** `perSec` 0 logs nothing (everything is only counted). Burst default 4 × perSec. */
  constructor(perSec: number, options: { burst?: number; now?: () => number } = {}) {
    this.#perSec = Math.max(0, perSec);
    this.#now = options.now ?? Date.now;
    if (this.#perSec > 0) this.#buckets = new KeyedTokenBucket({ burst: options.burst ?? this.#perSec * 4, refillMs: 1000 / this.#perSec, maxKeys: 1000 });
  }

  /** Lines left out (of every kind) and not yet reported. */
  get suppressed(): number {
    let n = 0;
    for (const s of this.#suppressed.values()) n += s;
    return n;
  }

  /**
   * Whether one more line of this kind may be logged now: `undefined` if not (it is counted as
   * suppressed), otherwise the number of lines of this kind suppressed before it (to be logged
   * with it), reset to 0.
   */
  take(kind = ''): number | undefined {
    if (!this.#buckets?.take(kind, this.#now())) {
      this.#suppressed.set(kind, (this.#suppressed.get(kind) ?? 0) + 1);
      return undefined;
    }
    const n = this.#suppressed.get(kind) ?? 0;
    this.#suppressed.delete(kind);
    return n;
  }
}
