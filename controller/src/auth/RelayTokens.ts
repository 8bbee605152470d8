import { CascadeError, type Logger, type VerifiedTokenClaims } from '@cascade/protocol';
import type { RevocationList } from './RevocationList.js';
import type { IssuedToken, TokenService } from './TokenService.js';

export interface RelayTokensOptions {
  /** Lifetime of a renewed relay token, seconds (auth.relayTokenTtlSec). */
  ttlSec: number;
  /**
   * Time a relay whose token was revoked has, once drained (no new traffic, its child relays
   * moving make-before-break), before its control connection is closed, ms. Default 5000.
   */
  drainGraceMs?: number;
}

/** What the gateway lets RelayTokens do to one relay connection. */
export interface RevocableRelay {
  nodeId: string;
  /** Mark the relay draining and move its children (TopologyController.drainNode). */
  drain(): Promise<void>;
  /** End the control connection with this error (the relay takes it as fatal). */
  close(err: CascadeError): void;
}

/**
 * The relay-token side of the relay gateway, kept apart from it: renewal of short-lived relay
 * tokens over the control connection, and the drain of relays whose token gets revoked. The
 * gateway calls track() once a relay registered (and the returned function when the
 * connection closes), and answers `node.renewToken` with renew(). A revoked relay is drained
 * (no new traffic, children moved make-before-break), then cut off after `drainGraceMs` with
 * CASCADE_ERR_AUTH_REVOKED_TOKEN; registering again with the token is refused (TokenService).
 */
export class RelayTokens {
  readonly #tokens: TokenService;
  readonly #revocations: RevocationList;
  readonly #options: RelayTokensOptions;
  readonly #log: Logger;
  readonly #byTokenId = new Map<string, Set<RevocableRelay>>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #onRevoked = (tokenId: string) => void this.#revoked(tokenId);
  #closed = false;

  constructor(options: RelayTokensOptions, deps: { tokens: TokenService; revocations: RevocationList; logger: Logger }) {
    this.#options = options;
    this.#tokens = deps.tokens;
    this.#revocations = deps.revocations;
    this.#log = deps.logger.child({ component: 'RelayTokens' });
    this.#revocations.on('revoked', this.#onRevoked);
  }

  /** Follow a registered relay's token; returns the function to call when its connection closes. */
  track(claims: VerifiedTokenClaims, relay: RevocableRelay): () => void {
    const set = this.#byTokenId.get(claims.jti) ?? new Set<RevocableRelay>();
    set.add(relay);
    this.#byTokenId.set(claims.jti, set);
    return () => {
      set.delete(relay);
      if (set.size === 0 && this.#byTokenId.get(claims.jti) === set) this.#byTokenId.delete(claims.jti);
    };
  }

  /** Revoke a relay's token everywhere (a relay caught tampering): it is drained and cut off like any revoked one. */
  async revoke(tokenId: string): Promise<void> {
    await this.#revocations.revoke(tokenId);
  }

  /** A fresh token for the one a relay registered with (same id); refused once revoked. */
  renew(claims: VerifiedTokenClaims): IssuedToken {
    return this.#tokens.renew(claims, this.#options.ttlSec);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#revocations.off('revoked', this.#onRevoked);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#byTokenId.clear();
  }

  async #revoked(tokenId: string): Promise<void> {
    const relays = [...(this.#byTokenId.get(tokenId) ?? [])];
    for (const relay of relays) {
      this.#log.warn({ tokenId, nodeId: relay.nodeId }, 'relay token revoked: draining the relay, then cutting it off');
      try {
        await relay.drain();
      } catch (err) {
        this.#log.warn({ err, nodeId: relay.nodeId }, 'cannot drain the revoked relay; cutting it off now');
      }
      if (this.#closed) return;
      const t = setTimeout(() => {
        this.#timers.delete(t);
        relay.close(new CascadeError('CASCADE_ERR_AUTH_REVOKED_TOKEN', tokenId));
      }, this.#options.drainGraceMs ?? 5000);
      this.#timers.add(t);
    }
  }
}
