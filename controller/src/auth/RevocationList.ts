import { TypedEmitter, type Logger } from '@cascade/protocol';
import type { RevocationCheck } from './TokenService.js';

/** Where revocations live (the account store, in process or in Redis). */
export interface RevocationStore {
  /** Record a revocation; resolves whether it is new. Every instance's onRevocation() hears it. */
  revokeToken(tokenId: string, revokedAt: number): Promise<boolean>;
  /** Every revoked id with when it was revoked (ms). */
  revokedTokens(): Promise<Map<string, number>>;
  /** Revocations made through any instance sharing the store. Returns an unsubscribe function. */
  onRevocation(handler: (tokenId: string) => void): () => void;
}

export type RevocationListEvents = {
  /** A token id was revoked (here or through another instance). */
  revoked: [tokenId: string];
  listenererror: [event: string, error: unknown];
};

export interface RevocationListOptions {
  /**
   * Period of the full reload that catches revocations whose notification was lost (a Redis
   * connection that dropped for a moment), ms. Default 5000.
   */
  resyncMs?: number;
}

/**
 * The revoked token ids, held in memory so that every token check (a synchronous one, on the
 * hot paths of publishing, watching and relay registration) can ask; kept current from the
 * store: notifications from every instance as they happen, and a full reload every few seconds.
 * `revoked` fires once per id, whichever way it learned of it, so relays on a revoked token
 * can be drained (RelayGateway).
 */
export class RevocationList extends TypedEmitter<RevocationListEvents> implements RevocationCheck {
  readonly #store: RevocationStore;
  readonly #log: Logger;
  readonly #ids = new Set<string>();
  readonly #resyncMs: number;
  #unsubscribe: (() => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(store: RevocationStore, deps: { logger: Logger }, options: RevocationListOptions = {}) {
    super();
    this.#store = store;
    this.#log = deps.logger.child({ component: 'RevocationList' });
    this.#resyncMs = options.resyncMs ?? 5000;
  }

  /** Load what the store holds and follow it. Resolves once loaded. */
  async start(): Promise<void> {
    if (this.#unsubscribe || this.#closed) return;
    this.#unsubscribe = this.#store.onRevocation((id) => this.#add(id));
    await this.sync();
    this.#timer = setInterval(() => void this.sync().catch((err) => this.#log.warn({ err }, 'cannot reload revocations')), this.#resyncMs);
    this.#timer.unref();
  }

  /** Reload every revocation from the store. */
  async sync(): Promise<void> {
    const all = await this.#store.revokedTokens();
    // The first load is every revocation ever made: no line each.
    const quiet = this.#ids.size === 0;
    for (const id of all.keys()) this.#add(id, quiet);
  }

  has(tokenId: string): boolean {
    return this.#ids.has(tokenId);
  }

  get size(): number {
    return this.#ids.size;
  }

  /** Revoke a token id everywhere. Resolves whether it was not revoked before. */
  async revoke(tokenId: string): Promise<boolean> {
    const fresh = await this.#store.revokeToken(tokenId, Date.now());
    this.#add(tokenId);
    return fresh;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
    this.removeAllListeners();
  }

  #add(tokenId: string, quiet = false): void {
    if (this.#ids.has(tokenId)) return;
    this.#ids.add(tokenId);
    if (!quiet) this.#log.info({ tokenId }, 'token revoked');
    this.safeEmit('revoked', tokenId);
  }
}
