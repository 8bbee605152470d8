import { MAX_LAYERS, TypedEmitter, type Quality } from '@cascade/protocol';
import { maxLayerFor } from './quality.js';

/** Timers, injected so that tests run on a fake clock. */
export interface LayerDemandTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LayerDemandOptions {
  /** A lower demand is passed on only after it has held this long (ms): a viewer flipping between qualities costs nothing upstream. Default 5000. */
  decayMs?: number;
}

export type LayerDemandEvents = {
  /** The highest spatial layer wanted here changed (raised at once, lowered after decayMs). */
  change: [maxSpatialLayer: number];
  listenererror: [event: string, error: unknown];
};

/** Everything: 'auto' and 'high' want the top layer, whatever the stream has. */
const ALL = MAX_LAYERS - 1;

/**
 * What one node needs of a stream's video layers from its parent: the highest spatial layer
 * any of its viewers (by their quality) or child relays (by what they asked for) wants. The
 * lowest layer is always wanted, so that a new viewer of a relay starts on it at once; the
 * others flow only while someone below wants them. A relay reports changes to its parent
 * (`pipe.layers`); the origin has no parent to tell.
 */
export class LayerDemand extends TypedEmitter<LayerDemandEvents> {
  readonly #decayMs: number;
  readonly #timers: LayerDemandTimers;
  /** Spatial layers of the stream's video right now (for 'medium'). */
  readonly #layers: () => number;
  readonly #viewers = new Map<string, Quality>();
  readonly #children = new Map<string, number>();
  #value = 0;
  #lowering: unknown;
  #closed = false;

  constructor(layers: () => number, options: LayerDemandOptions = {}, deps: { timers?: LayerDemandTimers } = {}) {
    super();
    this.#layers = layers;
    this.#decayMs = options.decayMs ?? 5000;
    this.#timers = deps.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) };
  }

  /** The highest spatial layer wanted (0: only the lowest). */
  get value(): number {
    return this.#value;
  }

  /** A viewer's quality here (undefined: it left). */
  setViewer(id: string, quality: Quality | undefined): void {
    if (quality === undefined) this.#viewers.delete(id);
    else this.#viewers.set(id, quality);
    this.update();
  }

  /** A child relay's demand (undefined: its pipe closed). */
  setChild(id: string, maxSpatialLayer: number | undefined): void {
    if (maxSpatialLayer === undefined) this.#children.delete(id);
    else this.#children.set(id, Math.max(0, Math.min(ALL, Math.floor(maxSpatialLayer))));
    this.update();
  }

  /** Recompute (also when the stream's layer count changed, which moves 'medium'). */
  update(): void {
    if (this.#closed) return;
    const wanted = this.#compute();
    if (wanted > this.#value) {
      this.#cancelLowering();
      this.#set(wanted);
    } else if (wanted < this.#value) {
      if (this.#lowering === undefined) {
        this.#lowering = this.#timers.setTimeout(() => {
          this.#lowering = undefined;
          const now = this.#compute();
          if (now < this.#value) this.#set(now);
        }, this.#decayMs);
      }
    } else {
      this.#cancelLowering();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelLowering();
    this.#viewers.clear();
    this.#children.clear();
    this.removeAllListeners();
  }

  #compute(): number {
    const layers = Math.max(1, this.#layers());
    let max = 0;
    for (const q of this.#viewers.values()) {
      const l = q === 'auto' || q === 'high' ? ALL : maxLayerFor(q, layers);
      if (l !== undefined && l > max) max = l;
    }
    for (const l of this.#children.values()) if (l > max) max = l;
    return max;
  }

  #cancelLowering(): void {
    if (this.#lowering === undefined) return;
    this.#timers.clearTimeout(this.#lowering);
    this.#lowering = undefined;
  }

  #set(v: number): void {
    this.#value = v;
    this.safeEmit('change', v);
  }
}
