/**
 * When to retry a lost connection. `nextRetryDelayMs` returns the delay before the next
 * attempt, or `null` to give up. Injected so tests and operators can change it.
 */
export interface ReconnectContext {
  /** Attempts made so far in this episode (0 before the first retry). */
  retryCount: number;
  /** ms since the connection was lost. */
  elapsedMs: number;
}

export interface ReconnectPolicy {
  nextRetryDelayMs(context: ReconnectContext): number | null;
}

export interface DefaultReconnectPolicyOptions {
  /** Delay of the first retry, ms. Default 0: a node that vanished is replaced at once. */
  initialDelayMs?: number;
  /** ms. Default 100. */
  baseDelayMs?: number;
  /** ms. Default 5000. */
  maxDelayMs?: number;
  /** Fraction of the delay randomised, 0..1. Default 0.5. */
  jitter?: number;
  /** Give up after this long, ms. Default 60000; Infinity retries for ever. */
  maxElapsedMs?: number;
  random?: () => number;
}

/** Exponential backoff with jitter; the first retry is immediate so failover stays fast. */
export class DefaultReconnectPolicy implements ReconnectPolicy {
  readonly #o: Required<DefaultReconnectPolicyOptions>;

  constructor(options: DefaultReconnectPolicyOptions = {}) {
    this.#o = {
      initialDelayMs: options.initialDelayMs ?? 0,
      baseDelayMs: options.baseDelayMs ?? 100,
      maxDelayMs: options.maxDelayMs ?? 5000,
      jitter: options.jitter ?? 0.5,
      maxElapsedMs: options.maxElapsedMs ?? 60_000,
      random: options.random ?? Math.random,
    };
  }

  nextRetryDelayMs({ retryCount, elapsedMs }: ReconnectContext): number | null {
    const o = this.#o;
    if (elapsedMs >= o.maxElapsedMs) return null;
    if (retryCount === 0) return o.initialDelayMs;
    const exp = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (retryCount - 1));
    // Jitter spreads the herd of viewers of one failed relay over time.
    const delay = exp * (1 - o.jitter + o.jitter * 2 * o.random());
    return Math.round(Math.min(o.maxDelayMs, delay));
  }
}
