/** Time as the endpoint sees it (ms); injected so that the liveness policy runs on fake time in tests. */
export interface LivenessClock {
  now(): number;
}

export interface PingLivenessOptions {
  /** Silence (no pong) after which a client is terminated, ms. */
  deadAfterMs: number;
  /** Silence after which a client is reported once, but kept, ms. Default: never. */
  suspectAfterMs?: number;
  /**
   * The time between ping rounds, ms. A round that comes more than twice this late means this
   * process itself stood still (frozen, swapped out, a long GC): its clients' pongs may be
   * unread in the socket buffers, so their silence counts only from the moment it resumed.
   * Default: no such allowance.
   */
  roundIntervalMs?: number;
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
  #lastRound: number | undefined;
  /** When this process last resumed after standing still (silence before it is not the clients'). */
  #resumedAt = -Infinity;

  constructor(options: PingLivenessOptions, deps: { clock?: LivenessClock } = {}) {
    this.#options = options;
    this.#clock = deps.clock ?? { now: () => Date.now() };
  }

  /** The client connected, or answered a ping. */
  heard(client: C): void {
    this.#lastPong.set(client, this.#clock.now());
    this.#suspect.delete(client);
  }

  /**
   * A ping round begins (call before the round's verdicts). After a round that came far too late
   * (this process stood still), silence is counted from now: on resuming, Node runs its timers
   * before it reads the pongs that arrived meanwhile, and every client would look dead.
   */
  round(): void {
    const now = this.#clock.now();
    const every = this.#options.roundIntervalMs;
    if (every !== undefined && this.#lastRound !== undefined && now - this.#lastRound > 2 * every) this.#resumedAt = now;
    this.#lastRound = now;
  }

  /** How long the client has not answered (ms), not counting a stall of this process. */
  silentFor(client: C): number {
    const now = this.#clock.now();
    return now - Math.max(this.#lastPong.get(client) ?? now, this.#resumedAt);
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
