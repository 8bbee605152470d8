/** Cumulative counts of one source: packets received and lost since it began. */
export interface PacketCounts {
  received: number;
  lost: number;
}

/**
 * Upstream loss over the last windowMs, from each source's cumulative counts.
 *
 * Why a window and not heartbeat to heartbeat: mediasoup counts a producer's packets as they
 * come but its losses only when it writes a receiver report (about every second, jittered by
 * ±50 %). Measured per one-second heartbeat, a relay losing 9 % reported 0.17 and 0 in turns
 * (seen in the demotion test), and the controller, which demotes on three bad heartbeats in a
 * row, never did. Over several report intervals the rate comes out near the real one.
 */
export class LossWindow {
  readonly #windowMs: number;
  /** Per source: its samples, oldest first; the first is the newest at least windowMs old (the base). */
  readonly #history = new Map<string, ({ at: number } & PacketCounts)[]>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /**
   * Take every current source's counts at `at`; a source missing here has gone and is forgotten.
   * Returns the share of packets lost, 0..1, over the window (a new source's since it began).
   */
  add(at: number, counts: ReadonlyMap<string, PacketCounts>): number {
    let received = 0;
    let lost = 0;
    for (const id of this.#history.keys()) if (!counts.has(id)) this.#history.delete(id);
    for (const [id, now] of counts) {
      const h = this.#history.get(id) ?? [];
      this.#history.set(id, h);
      h.push({ at, ...now });
      while (h.length > 2 && h[1]!.at <= at - this.#windowMs) h.shift();
      const base = h[0]!;
      // A late packet or a repair can take back a loss already counted: never below zero.
      received += Math.max(0, now.received - base.received);
      lost += Math.max(0, now.lost - base.lost);
    }
    return received + lost > 0 ? Math.min(1, lost / (received + lost)) : 0;
  }
}
