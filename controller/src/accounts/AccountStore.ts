import type { RevocationStore } from '../auth/RevocationList.js';

export interface AccountRecord {
  /** Stable id (random); ledger entries and tokens refer to it. */
  id: string;
  /** The name as chosen, shown to others (relay tokens carry it as their subject). */
  name: string;
  /** The name folded to lower case: unique, what sign-in looks up. */
  key: string;
  /** argon2id PHC string. */
  passwordHash: string;
  createdAt: number;
}

/** A sign-in session. Its id is the SHA-256 of the secret the cookie carries, never the secret itself. */
export interface SessionRecord {
  id: string;
  accountId: string;
  createdAt: number;
  expiresAt: number;
}

/** A token issued to an account (Volunteer page, broadcast page), listed so that it can be revoked. */
export interface AccountTokenRecord {
  /** The token id (jti). */
  id: string;
  kind: 'relay' | 'broadcast';
  issuedAt: number;
  /** Expiry of the token as issued; a running relay renews its own (same id) before then. */
  expiresAt: number;
}

/**
 * Accounts, sessions, the tokens issued to accounts, revocations and rate-limit counters: in
 * process for a single machine (`npm start`), or in Redis where several controller instances
 * share them. Writes that must not race (a name taken twice, a counter) are single atomic
 * operations of the store. The same contract tests run against both implementations.
 *
 * Every method may reject with CASCADE_ERR_STORE_UNAVAILABLE.
 */
export interface AccountStore extends RevocationStore {
  readonly kind: 'memory' | 'redis';

  // ---- accounts
  /** Create an account. Rejects CASCADE_ERR_ACCOUNT_NAME_TAKEN when `key` is taken (atomic: of two racing sign-ups one wins). */
  createAccount(account: AccountRecord): Promise<void>;
  getAccount(id: string): Promise<AccountRecord | undefined>;
  /** By folded name (`AccountRecord.key`). */
  findAccount(key: string): Promise<AccountRecord | undefined>;
  /** Accounts in creation order, oldest first. */
  listAccounts(offset: number, limit: number): Promise<AccountRecord[]>;
  countAccounts(): Promise<number>;

  // ---- sessions
  /** Store a session until its expiresAt. */
  putSession(session: SessionRecord): Promise<void>;
  /** The session, unless unknown or expired at `now`. */
  getSession(id: string, now: number): Promise<SessionRecord | undefined>;
  deleteSession(id: string): Promise<void>;

  // ---- tokens issued to accounts (the newest MAX_ACCOUNT_TOKENS are kept)
  addToken(accountId: string, token: AccountTokenRecord): Promise<void>;
  /** Newest first. */
  listTokens(accountId: string): Promise<AccountTokenRecord[]>;

  // ---- revocations (RevocationStore): permanent, a revoked id never comes back

  // ---- rate limits
  /**
   * Count one hit of `key` in the fixed window of `windowMs` that contains `now`, and resolve
   * the hits of that window so far (this one included). Atomic across instances.
   */
  hit(key: string, windowMs: number, now: number): Promise<number>;

  close(): Promise<void>;
}

/** Tokens listed per account; older ones drop off the list (they stay valid until they expire or are revoked). */
export const MAX_ACCOUNT_TOKENS = 50;

/** How names compare: case folded, so "Alice" and "alice" are one account (AccountRecord.key). */
export const foldName = (name: string): string => name.toLowerCase();
