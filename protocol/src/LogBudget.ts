/**
 * A token bucket for log lines that a remote party can cause (refused messages, refused
 * connections): the first ones are logged, a flood costs at most `perSec` lines a second, and
 * the next line logged says how many were left out meanwhile. Metrics still count every one.
 */
export class LogBudget {
  readonly #perSec: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;
  #suppressed = 0;

  /** `perSec` 0 logs nothing (everything is only counted). Burst default 4 × perSec. */
  constructor(perSec: number, options: { burst?: number; now?: () => number } = {}) {
    this.#perSec = Math.max(0, perSec);
    this.#burst = options.burst ?? this.#perSec * 4;
    this.#now = options.now ?? Date.now;
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }

  /** Lines left out since the last one logged. */
  get suppressed(): number {
    return this.#suppressed;
  }

  /**
   * Whether one more line may be logged now: `undefined` if not (it is counted as suppressed),
   * otherwise the number of lines suppressed before it (to be logged with it), reset to 0.
   */
  take(): number | undefined {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#perSec);
    this.#last = now;
    if (this.#tokens < 1) {
      this.#suppressed++;
      return undefined;
    }
    this.#tokens -= 1;
    const n = this.#suppressed;
    this.#suppressed = 0;
    return n;
  }
}
