import { CascadeError } from './errors.js';
import { TypedEmitter } from './TypedEmitter.js';

export type TokenRenewalEvents = {
  /** A fresh token: use it from now on (for the next registration after a reconnect too). */
  renewed: [token: string, expiresAt: number];
  /** A renewal failed and will be tried again (the controller was away, a timeout). */
  retrying: [error: unknown, delayMs: number];
  /** The token was revoked: no renewal will ever succeed; stop using it. */
  revoked: [error: CascadeError];
  listenererror: [event: string, error: unknown];
};

export interface TokenRenewalOptions {
  /** Renew once this share of the token's lifetime is left. Default 1/3. */
  renewWhenLeft?: number;
  /** Delay before retrying a failed renewal, ms (never past the token's expiry). Default 30000. */
  retryMs?: number;
  /** Clock (ms). Default Date.now. */
  now?: () => number;
}

/** `exp` (ms) of a JWT, read without verifying it (the issuer verifies; this only schedules). */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '='));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Keeps a short-lived relay token fresh over the control connection: asks for a new one
 * (`node.renewToken`, through `renew`) once a third of its lifetime is left, retries on failure
 * until it expires, and stops for good when the token was revoked. For the relay's control
 * client: start() after each registration with the token it registered with, stop() when the
 * connection goes, and register with `token` after a reconnect.
 */
/** setTimeout's longest delay (ms); a longer one is taken as 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class TokenRenewal extends TypedEmitter<TokenRenewalEvents> {
  readonly #renew: () => Promise<{ token: string; expiresAt: number }>;
  readonly #whenLeft: number;
  readonly #retryMs: number;
  readonly #now: () => number;
  #token = '';
  #timer: ReturnType<typeof setTimeout> | undefined;
  #generation = 0;

  constructor(renew: () => Promise<{ token: string; expiresAt: number }>, options: TokenRenewalOptions = {}) {
    super();
    this.#renew = renew;
    this.#whenLeft = options.renewWhenLeft ?? 1 / 3;
    this.#retryMs = options.retryMs ?? 30_000;
    this.#now = options.now ?? Date.now;
  }

  /** The newest token: the one to register with. */
  get token(): string {
    return this.#token;
  }

  start(token: string): void {
    this.stop();
    this.#token = token;
    const exp = tokenExpiry(token);
    if (exp === undefined) return;
    const issued = Math.min(this.#now(), exp);
    this.#schedule(Math.max(0, exp - issued) * (1 - this.#whenLeft), exp);
  }

  stop(): void {
    this.#generation++;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delayMs: number, exp: number): void {
    const generation = this.#generation;
    // A timer longer than setTimeout's limit (about 24.8 days) fires at once: a long-lived token
    // (an operator's, a year) was renewed immediately, before its node was even registered.
    // Longer waits go in steps.
    const wait = Math.max(0, delayMs);
    const step = Math.min(wait, MAX_TIMER_MS);
    this.#timer = setTimeout(() => {
      if (generation !== this.#generation) return;
      if (wait > step) this.#schedule(wait - step, exp);
      else void this.#attempt(generation, exp);
    }, step);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  async #attempt(generation: number, exp: number): Promise<void> {
    try {
      const { token, expiresAt } = await this.#renew();
      if (generation !== this.#generation) return;
      this.#token = token;
      this.safeEmit('renewed', token, expiresAt);
      this.#schedule((expiresAt - this.#now()) * (1 - this.#whenLeft), expiresAt);
    } catch (err) {
      if (generation !== this.#generation) return;
      if (err instanceof CascadeError && err.code === 'CASCADE_ERR_AUTH_REVOKED_TOKEN') {
        this.stop();
        this.safeEmit('revoked', err);
        return;
      }
      const left = exp - this.#now();
      if (left <= 0) return; // expired: the next registration will say so
      const delay = Math.min(this.#retryMs, left / 2);
      this.safeEmit('retrying', err, delay);
      this.#schedule(delay, exp);
    }
  }
}
