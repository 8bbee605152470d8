/**
 * Rewrites RTP timestamps so that each frame carries the wall-clock time the broadcaster
 * handed it on: ts = ms·clockRate/1000 mod 2^32. mediasoup forwards the timestamps of a
 * simple consumer (and of pipe transports) unchanged, so a viewer on the same clock reads
 * its end-to-end delay as `now − ts` with no side channel.
 *
 * All packets of one frame share the source timestamp and get the same stamp; output
 * timestamps never go backwards, so the decoder sees a normal stream even across the
 * clip's loop point (where the source timestamps jump).
 */
export class FrameStamper {
  readonly #clockRate: number;
  readonly #now: () => number;
  #lastIn: number | undefined;
  #lastOut: number | undefined;

  /** @param now wall clock, ms (shared with the viewers). */
  constructor(now: () => number, clockRate = 90000) {
    this.#now = now;
    this.#clockRate = clockRate;
  }

  /** The stamp for a packet whose source timestamp is `sourceTs`. */
  stamp(sourceTs: number): number {
    if (sourceTs === this.#lastIn && this.#lastOut !== undefined) return this.#lastOut;
    let out = Math.round((this.#now() * this.#clockRate) / 1000) >>> 0;
    // Two frames within one clock tick (or a clock step back) must still be distinct and ordered.
    if (this.#lastOut !== undefined && ((out - this.#lastOut) | 0) <= 0) out = (this.#lastOut + 1) >>> 0;
    this.#lastIn = sourceTs;
    this.#lastOut = out;
    return out;
  }
}

