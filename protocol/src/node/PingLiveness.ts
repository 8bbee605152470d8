/** Time as the endpoint sees it (ms); injected so that the liveness policy runs on fake time in tests. */
export interface LivenessClock {
  now(): number;
}

export interface PingLivenessOptions {
  /** Silence (no pong) after which a client is terminated, ms. */
  deadAfterMs: number;
  /** Silence after which a client is reported once, but kept, ms. Default: never. */
  suspectAfterMs?: number;
}

/**
 * What a WebSocket endpoint decides about each client at every ping round, from when it last
 * answered: `dead` (terminate it), `silent` (report it, once per silence), or `alive`. Time-based
 * rather than "N pongs missed", so that a slow link (pings in flight) is not taken for a dead one.
 */
export class PingLiveness<C extends object> {
  readonly #options: PingLivenessOptions;
  readonly #clock: LivenessClock;
  /** When each client last answered a ping (or connected). */
  readonly #lastPong = new WeakMap<C, number>();
  /** Clients reported silent and not heard from since. */
  readonly #suspect = new WeakSet<C>();

  constructor(options: PingLivenessOptions, deps: { clock?: LivenessClock } = {}) {
    this.#options = options;
    this.#clock = deps.clock ?? { now: () => Date.now() };
  }

  /** The client connected, or answered a ping. */
  heard(client: C): void {
    this.#lastPong.set(client, this.#clock.now());
    this.#suspect.delete(client);
  }

  /** How long the client has not answered (ms). */
  silentFor(client: C): number {
    const now = this.#clock.now();
    return now - (this.#lastPong.get(client) ?? now);
  }

  /** The verdict at a ping round, and how long the client has been silent (ms). */
  verdict(client: C): { verdict: 'dead' | 'silent' | 'alive'; silentMs: number } {
    const silentMs = this.silentFor(client);
    if (silentMs > this.#options.deadAfterMs) return { verdict: 'dead', silentMs };
    const suspectAfter = this.#options.suspectAfterMs;
    if (suspectAfter !== undefined && silentMs > suspectAfter && !this.#suspect.has(client)) {
      this.#suspect.add(client);
      return { verdict: 'silent', silentMs };
    }
    return { verdict: 'alive', silentMs };
  }
}
