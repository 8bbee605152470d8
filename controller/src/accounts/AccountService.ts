import { createHash, randomBytes } from 'node:crypto';
import { CascadeError, TypedEmitter, type ErrorCode, type Logger } from '@cascade/protocol';
import { deriveKey, hmac, safeEqual } from '../auth/keys.js';
import type { RevocationList } from '../auth/RevocationList.js';
import type { IssuedToken, TokenService } from '../auth/TokenService.js';
import type { LedgerStore } from '../credits/LedgerStore.js';
import { SampledLog } from '../credits/SampledLog.js';
import { systemClock, type Clock } from '../clock.js';
import { foldName, type AccountRecord, type AccountStore, type AccountTokenRecord } from './AccountStore.js';
import type { PasswordHasher } from './PasswordHasher.js';

export interface AccountServiceOptions {
  /** Lifetime of a session, seconds. */
  sessionTtlSec: number;
  /** Sign-in attempts per minute per address, and per account name. */
  signInPerMinute: number;
  /** Sign-ups per hour per address. */
  signUpPerHour: number;
  /** Sign-ups per minute on the whole deployment. */
  signUpPerMinuteTotal: number;
  relayTokenTtlSec: number;
  broadcastTokenTtlSec: number;
  /** Micro-points a new account starts with. */
  signupGrantMicro: number;
}

export interface AccountServiceDeps {
  store: AccountStore;
  ledger: LedgerStore;
  tokens: TokenService;
  revocations: RevocationList;
  hasher: PasswordHasher;
  /** The deployment secret: session cookies are authenticated with a key derived from it. */
  secret: string;
  logger: Logger;
  clock?: Clock;
}

export type AccountServiceObserverEvents = {
  signup: [accountId: string];
  signin: [accountId: string];
  /** A sign-up or sign-in refused, with its code (bad credentials, rate-limited, …). */
  refused: [what: 'signup' | 'signin', code: ErrorCode];
  listenererror: [event: string, error: unknown];
};

/** A signed-in session: the cookie value to set, and how long it lives. */
export interface SignedIn {
  account: AccountRecord;
  cookie: string;
  maxAgeSec: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$/;
/** Prefixes of subjects Cascade gives out itself (development tokens, the origin). */
const RESERVED = [/^dev-/i, /^origin$/i, /^operator$/i];


/** A session id in the store: the hash of the cookie's secret part, so that a copy of the store opens no session. */
const sessionId = (secretPart: string) => createHash('sha256').update(secretPart).digest('hex');

/**
 * Sign-up, sign-in and sessions for the web demo, and the tokens a signed-in user gets for
 * themselves (a relay token on the Volunteer page, a broadcast token to go live under their
 * name). Passwords are argon2id hashes; sessions are random secrets in an httpOnly cookie,
 * authenticated with a key derived from the deployment secret (a cookie from another
 * deployment fails that check before any store lookup); every attempt counts towards
 * per-address and per-name limits held in the store, so they hold across instances.
 */
export class AccountService {
  readonly observer = new TypedEmitter<AccountServiceObserverEvents>();
  readonly options: AccountServiceOptions;
  readonly #store: AccountStore;
  readonly #ledger: LedgerStore;
  readonly #tokens: TokenService;
  readonly #revocations: RevocationList;
  readonly #hasher: PasswordHasher;
  readonly #cookieKey: Buffer;
  readonly #log: Logger;
  readonly #refusals: SampledLog;
  readonly #clock: Clock;
  /** Compared against when the name is unknown, so that a wrong name costs what a wrong password does. */
  #decoy: Promise<string> | undefined;

  constructor(options: AccountServiceOptions, deps: AccountServiceDeps) {
    this.options = options;
    this.#store = deps.store;
    this.#ledger = deps.ledger;
    this.#tokens = deps.tokens;
    this.#revocations = deps.revocations;
    this.#hasher = deps.hasher;
    this.#cookieKey = deriveKey(deps.secret, 'session-cookie');
    this.#log = deps.logger.child({ component: 'AccountService' });
    this.#refusals = new SampledLog(this.#log, 10_000);
    this.#clock = deps.clock ?? systemClock;
  }

  get store(): AccountStore {
    return this.#store;
  }

  // ------------------------------------------------------------------ sign-up, sign-in

  async signUp(name: unknown, password: unknown, address: string): Promise<SignedIn> {
    return this.#observed('signup', () => this.#signUp(name, password, address));
  }

  async signIn(name: unknown, password: unknown, address: string): Promise<SignedIn> {
    return this.#observed('signin', () => this.#signIn(name, password, address));
  }

  async #observed(what: 'signup' | 'signin', fn: () => Promise<SignedIn>): Promise<SignedIn> {
    try {
      const s = await fn();
      this.observer.safeEmit(what, s.account.id);
      return s;
    } catch (err) {
      this.observer.safeEmit('refused', what, err instanceof CascadeError ? err.code : 'CASCADE_ERR_INTERNAL');
      throw err;
    }
  }

  async #signUp(name: unknown, password: unknown, address: string): Promise<SignedIn> {
    const n = checkName(name);
    const p = checkPassword(password);
    const now = this.#clock.now();
    await this.#limit(`signup:addr:${address}`, 3_600_000, this.options.signUpPerHour, { address }, now);
    await this.#limit('signup:all', 60_000, this.options.signUpPerMinuteTotal, { address }, now);
    if (await this.#store.findAccount(foldName(n))) throw new CascadeError('CASCADE_ERR_ACCOUNT_NAME_TAKEN', n);
    const account: AccountRecord = {
      id: `a_${randomBytes(9).toString('base64url')}`,
      name: n,
      key: foldName(n),
      passwordHash: await this.#hasher.hash(p),
      createdAt: now,
    };
    await this.#store.createAccount(account);
    await this.#ledger.open(account.id, this.options.signupGrantMicro, now);
    this.#log.info({ accountId: account.id, name: account.name }, 'account created');
    return this.#startSession(account, now);
  }

  async #signIn(name: unknown, password: unknown, address: string): Promise<SignedIn> {
    if (typeof name !== 'string' || typeof password !== 'string' || name.length > 64 || password.length > 256) {
      throw new CascadeError('CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS');
    }
    const now = this.#clock.now();
    await this.#limit(`signin:addr:${address}`, 60_000, this.options.signInPerMinute, { address }, now);
    // Per name too: password guessing spread over many addresses still meets a limit.
    await this.#limit(`signin:name:${foldName(name)}`, 60_000, this.options.signInPerMinute, { address, name: foldName(name) }, now);
    const account = await this.#store.findAccount(foldName(name));
    const ok = account
      ? await this.#hasher.verify(account.passwordHash, password)
      : await this.#hasher.verify(await this.#decoyHash(), password).then(() => false);
    if (!account || !ok) {
      this.#refusals.warn('CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS', { address, name: foldName(name).slice(0, 32) }, 'sign-in refused');
      throw new CascadeError('CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS');
    }
    // Accounts whose ledger entry could not be written at sign-up get it now (open() is idempotent).
    await this.#ledger.open(account.id, this.options.signupGrantMicro, now);
    return this.#startSession(account, now);
  }

  /** End the session a cookie names (a bad or unknown cookie is already signed out). */
  async signOut(cookie: string | undefined): Promise<void> {
    const secretPart = this.#cookieSecret(cookie);
    if (secretPart) await this.#store.deleteSession(sessionId(secretPart));
  }

  /**
   * The account a session cookie signs in. Rejects CASCADE_ERR_ACCOUNT_SIGNED_OUT without a
   * cookie, CASCADE_ERR_ACCOUNT_SESSION_INVALID for a forged one, one from another deployment,
   * or an expired or ended session.
   */
  async authenticate(cookie: string | undefined): Promise<AccountRecord> {
    if (!cookie) throw new CascadeError('CASCADE_ERR_ACCOUNT_SIGNED_OUT');
    const secretPart = this.#cookieSecret(cookie);
    if (!secretPart) {
      this.#refusals.warn('CASCADE_ERR_ACCOUNT_SESSION_INVALID', {}, 'session cookie refused: not signed by this deployment');
      throw new CascadeError('CASCADE_ERR_ACCOUNT_SESSION_INVALID');
    }
    const session = await this.#store.getSession(sessionId(secretPart), this.#clock.now());
    const account = session && (await this.#store.getAccount(session.accountId));
    if (!account) throw new CascadeError('CASCADE_ERR_ACCOUNT_SESSION_INVALID', 'session ended or expired');
    return account;
  }

  // ------------------------------------------------------------------ tokens for the signed-in user

  /**
   * A token for the account itself: a volunteer relay token (Volunteer page) or a broadcast
   * token (going live under its name). Its subject is the account's name, which is how the
   * ledger finds whom a relay's traffic credits.
   */
  async issueToken(account: AccountRecord, kind: 'relay' | 'broadcast'): Promise<IssuedToken> {
    const issued =
      kind === 'relay'
        ? this.#tokens.mint({ scope: ['relay'], sub: account.name, volunteer: true, acct: account.id }, this.options.relayTokenTtlSec)
        : this.#tokens.mint({ scope: ['broadcast'], sub: account.name, acct: account.id }, this.options.broadcastTokenTtlSec);
    await this.#store.addToken(account.id, { id: issued.id, kind, issuedAt: this.#clock.now(), expiresAt: issued.expiresAt });
    this.#log.info({ accountId: account.id, kind, tokenId: issued.id }, 'token issued to account');
    return issued;
  }

  async listTokens(account: AccountRecord): Promise<(AccountTokenRecord & { revoked: boolean })[]> {
    return (await this.#store.listTokens(account.id)).map((t) => ({ ...t, revoked: this.#revocations.has(t.id) }));
  }

  /** Revoke one of the account's own tokens (CASCADE_ERR_AUTH_FORBIDDEN for anyone else's). */
  async revokeToken(account: AccountRecord, tokenId: string): Promise<void> {
    const mine = (await this.#store.listTokens(account.id)).some((t) => t.id === tokenId);
    if (!mine) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'not a token of this account');
    await this.#revocations.revoke(tokenId);
    this.#log.info({ accountId: account.id, tokenId }, 'account revoked its token');
  }

  /** The account a relay's owner (its token's subject) names, if any. */
  async accountForOwner(owner: string): Promise<AccountRecord | undefined> {
    return this.#store.findAccount(foldName(owner));
  }

  // ------------------------------------------------------------------ internals

  async #startSession(account: AccountRecord, now: number): Promise<SignedIn> {
    const secretPart = randomBytes(32).toString('base64url');
    const maxAgeSec = this.options.sessionTtlSec;
    await this.#store.putSession({ id: sessionId(secretPart), accountId: account.id, createdAt: now, expiresAt: now + maxAgeSec * 1000 });
    return { account, cookie: `${secretPart}.${hmac(this.#cookieKey, secretPart)}`, maxAgeSec };
  }

  /** The secret part of a cookie this deployment signed, or undefined. */
  #cookieSecret(cookie: string | undefined): string | undefined {
    if (!cookie || cookie.length > 200) return undefined;
    const dot = cookie.indexOf('.');
    if (dot <= 0) return undefined;
    const secretPart = cookie.slice(0, dot);
    return safeEqual(cookie.slice(dot + 1), hmac(this.#cookieKey, secretPart)) ? secretPart : undefined;
  }

  async #limit(key: string, windowMs: number, max: number, context: Record<string, unknown>, now: number): Promise<void> {
    const hits = await this.#store.hit(key, windowMs, now);
    if (hits > max) {
      this.#refusals.warn(`CASCADE_ERR_ACCOUNT_RATE_LIMITED:${key.split(':')[0]}`, { ...context, limit: key.split(':').slice(0, 2).join(':'), max }, 'account attempt rate-limited');
      throw new CascadeError('CASCADE_ERR_ACCOUNT_RATE_LIMITED');
    }
  }

  #decoyHash(): Promise<string> {
    this.#decoy ??= this.#hasher.hash(randomBytes(16).toString('hex'));
    return this.#decoy;
  }
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name) || RESERVED.some((r) => r.test(name))) {
    throw new CascadeError('CASCADE_ERR_ACCOUNT_INVALID_NAME');
  }
  return name;
}

function checkPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length < 10 || password.length > 256) throw new CascadeError('CASCADE_ERR_ACCOUNT_WEAK_PASSWORD');
  return password;
}
