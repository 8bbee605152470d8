import type { types } from 'mediasoup';

export interface LayerGuardOptions {
  /** Held below full frame rate on a higher layer this long (ms): one layer down. Default 4000. */
  frameRateGraceMs?: number;
  /** Losing packets (consumer score below lossScore) on a higher layer this long (ms): one layer down. Default 2000. */
  lossGraceMs?: number;
  /** mediasoup's consumer score (0..10, from the viewer's receiver reports) below which it counts as losing. Default 7. */
  lossScore?: number;
  /** How long a viewer stays down before trying the higher layer again (ms); doubles each time, up to 5 min. Default 20000. */
  retryAfterMs?: number;
}

type Rule = 'frameRate' | 'loss';

/**
 * When to hold a viewer below the layer its bandwidth estimate allows:
 * - mediasoup would rather send a higher layer at a fraction of its frame rate than a lower one
 *   whole; a viewer held there for a while gets the lower layer at full rate instead (a whole
 *   picture rather than a stuttering one);
 * - a viewer whose client estimates no bandwidth (no transport-cc) is sent whatever layer it
 *   asked for: if its receiver reports say it loses packets on it for a while, it gets the
 *   layer below.
 * The cap is lifted after a while to try again, each time later (a link that cannot carry the
 * layer is not tried every few seconds). A choice of the viewer's (reset()) starts afresh.
 */
export class LayerGuard {
  readonly #temporal: number;
  readonly #onCap: () => void;
  readonly #graceMs: Record<Rule, number>;
  readonly #lossScore: number;
  readonly #firstRetryMs: number;
  #retryMs: number;
  #cap: number | undefined;
  #current: types.ConsumerLayers | undefined;
  #score = 10;
  readonly #timers: Partial<Record<Rule | 'lift', ReturnType<typeof setTimeout>>> = {};
  #closed = false;

  /** `temporal`: temporal layers of the stream; `onCap`: the cap changed. */
  constructor(temporal: number, onCap: () => void, options: LayerGuardOptions = {}) {
    this.#temporal = temporal;
    this.#onCap = onCap;
    this.#graceMs = { frameRate: options.frameRateGraceMs ?? 4000, loss: options.lossGraceMs ?? 2000 };
    this.#lossScore = options.lossScore ?? 7;
    this.#firstRetryMs = this.#retryMs = options.retryAfterMs ?? 20_000;
  }

  /** Highest spatial layer allowed for now (undefined: no cap). */
  get cap(): number | undefined {
    return this.#cap;
  }

  /** The layers the consumer forwards now (its 'layerschange'). */
  layers(current: types.ConsumerLayers | undefined): void {
    this.#current = current;
    this.#check();
  }

  /** The consumer's score (its 'score' event: 10 without loss). */
  score(score: number): void {
    this.#score = score;
    this.#check();
  }

  /** The viewer chose a quality: no cap, no backoff from before. */
  reset(): void {
    this.#clear();
    this.#cap = undefined;
    this.#retryMs = this.#firstRetryMs;
  }

  close(): void {
    this.#closed = true;
    this.#clear();
  }

  #bad(rule: Rule): boolean {
    const l = this.#current;
    if (!l || l.spatialLayer === 0) return false;
    if (rule === 'loss') return this.#score < this.#lossScore;
    return (l.temporalLayer ?? this.#temporal - 1) < this.#temporal - 1;
  }

  #check(): void {
    if (this.#closed) return;
    for (const rule of ['frameRate', 'loss'] as const) {
      if (!this.#bad(rule)) {
        clearTimeout(this.#timers[rule]);
        delete this.#timers[rule];
        continue;
      }
      this.#timers[rule] ??= unref(
        setTimeout(() => {
          delete this.#timers[rule];
          if (!this.#closed && this.#bad(rule)) this.#stepDown();
        }, this.#graceMs[rule]),
      );
    }
  }

  #stepDown(): void {
    const down = this.#current!.spatialLayer - 1;
    this.#cap = Math.min(down, this.#cap ?? down);
    this.#onCap();
    clearTimeout(this.#timers.lift);
    this.#timers.lift = unref(
      setTimeout(() => {
        delete this.#timers.lift;
        if (this.#closed) return;
        this.#cap = undefined;
        this.#retryMs = Math.min(this.#retryMs * 2, 300_000);
        this.#onCap();
      }, this.#retryMs),
    );
  }

  #clear(): void {
    for (const t of Object.values(this.#timers)) clearTimeout(t);
    for (const k of Object.keys(this.#timers)) delete this.#timers[k as Rule];
  }
}

function unref(t: ReturnType<typeof setTimeout>): ReturnType<typeof setTimeout> {
  t.unref?.();
  return t;
}
