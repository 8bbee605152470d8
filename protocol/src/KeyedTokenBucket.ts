/**
 * One token bucket per key: `burst` tokens, one more every `refillMs`. For limits a remote
 * party can run into (reports, refusals) where each key is a party or a kind of event. Keys
 * beyond `maxKeys` evict the least recently used one (a full bucket again): memory stays
 * bounded whatever the keys, at the price of forgetting the quietest.
 */
export class KeyedTokenBucket {
  readonly #burst: number;
  readonly #refillMs: number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, { tokens: number; last: number }>();

  constructor(options: { burst: number; refillMs: number; maxKeys?: number }) {
    this.#burst = options.burst;
    this.#refillMs = options.refillMs;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** Take one token for `key` at time `now` (ms): false when its bucket is empty. */
  take(key: string, now: number): boolean {
    let b = this.#buckets.get(key);
    if (b) this.#buckets.delete(key);
    else {
      b = { tokens: this.#burst, last: now };
      if (this.#buckets.size >= this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    // Re-inserted: the Map's order is least recently used first.
    this.#buckets.set(key, b);
    b.tokens = this.#refillMs > 0 ? Math.min(this.#burst, b.tokens + Math.max(0, now - b.last) / this.#refillMs) : this.#burst;
    b.last = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
