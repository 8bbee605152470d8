import { FRAME_TAG_AUDIO, FRAME_TAG_VIDEO, FRAME_TAG_VIDEO_UNKNOWN } from '@cascade/protocol';

/** How the origin gets one video layer: when a batch last listed its frames, and since when without a pause (local ms). */
export interface LayerVideo {
  at: number;
  since: number;
}

/** A layer the batches have not listed for this long has stopped at the origin (ms; they come every 100 ms, each layer's frames in every one at 10 frames/s or more). */
const LAYER_GONE_MS = 400;

/**
 * Which simulcast layers the origin gets, from the layer tags of its signed batches (see
 * DigestBatch.layers), as an IntegrityVerifier receives them: per layer (by its tag), when a
 * batch last listed its frames, since when without a pause of `pauseMs`, and since when batches
 * listing it have come without a break of `runGapMs`.
 */
export class OriginLayers {
  readonly #layers = new Map<number, LayerVideo & { runSince: number }>();
  readonly #pauseMs: number;
  readonly #runGapMs: number;

  constructor(o: { pauseMs: number; runGapMs: number }) {
    this.#pauseMs = o.pauseMs;
    this.#runGapMs = o.runGapMs;
  }

  /** A batch arrived whose own period lists frames of these layers (`tags`: that part of its tags). */
  note(tags: Uint8Array, arrived: number): void {
    for (const tag of new Set(tags)) {
      if (tag === FRAME_TAG_AUDIO) continue;
      const l = this.#layers.get(tag);
      const gap = arrived - (l?.at ?? Number.NEGATIVE_INFINITY);
      this.#layers.set(tag, {
        at: Math.max(l?.at ?? arrived, arrived),
        since: !l || gap >= this.#pauseMs ? arrived : l.since,
        runSince: !l || gap >= this.#runGapMs ? arrived : l.runSince,
      });
    }
  }

  /** One layer (by its tag); undefined: never listed. */
  get(tag: number): LayerVideo | undefined {
    const l = this.#layers.get(tag);
    return l && { at: l.at, since: l.since };
  }

  /**
   * Since when batches listing this layer have come without a break, up to now: undefined when
   * they do not come now, null when the layer was never listed (the caller falls back on video of any layer).
   */
  flowingSince(tag: number, now: number): number | undefined | null {
    const l = this.#layers.get(tag);
    if (!l) return null;
    return now - l.at < this.#runGapMs ? l.runSince : undefined;
  }

  /** The highest layer (its index, 0 the lowest) the origin gets now; undefined while none is listed (untagged batches, or no video: a pause is not a layer change). */
  top(now: number): number | undefined {
    let top: number | undefined;
    for (const [tag, l] of this.#layers) {
      if (tag === FRAME_TAG_VIDEO_UNKNOWN || now - l.at >= LAYER_GONE_MS) continue;
      top = Math.max(top ?? 0, tag - FRAME_TAG_VIDEO);
    }
    return top;
  }
}
