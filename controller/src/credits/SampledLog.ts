import type { Logger } from '@cascade/protocol';

/**
 * Warn lines for refusals that a hostile client can cause at will (bad receipts, password
 * guessing): at most one line per kind per period, carrying how many were not logged since,
 * so a flood costs one line every few seconds rather than one per message.
 */
export class SampledLog {
  readonly #log: Logger;
  readonly #periodMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(log: Logger, periodMs: number) {
    this.#log = log;
    this.#periodMs = periodMs;
  }

  warn(kind: string, obj: Record<string, unknown>, msg: string, now = Date.now()): void {
    const l = this.#last.get(kind);
    if (l && now - l.at < this.#periodMs) {
      l.suppressed++;
      return;
    }
    if (this.#last.size > 1000) this.#last.clear();
    this.#last.set(kind, { at: now, suppressed: 0 });
    this.#log.warn({ ...obj, kind, ...(l?.suppressed ? { suppressedSinceLast: l.suppressed } : {}) }, msg);
  }
}
