import { CascadeError } from '@cascade/protocol';
import { MAX_ACCOUNT_TOKENS, type AccountRecord, type AccountStore, type AccountTokenRecord, type SessionRecord } from './AccountStore.js';

/**
 * The single-machine account store: everything in this process (lost when it exits, as the
 * in-process topology store is). Mirrors RedisAccountStore; the contract tests run both.
 */
export class MemoryAccountStore implements AccountStore {
  readonly kind = 'memory' as const;
  readonly #accounts = new Map<string, AccountRecord>();
  readonly #byKey = new Map<string, string>();
  readonly #sessions = new Map<string, SessionRecord>();
  readonly #tokens = new Map<string, AccountTokenRecord[]>();
  readonly #revoked = new Map<string, number>();
  readonly #revocationHandlers = new Set<(id: string) => void>();
  readonly #windows = new Map<string, { window: number; count: number; expiresAt: number }>();
  #closed = false;

  async createAccount(account: AccountRecord): Promise<void> {
    this.#check();
    if (this.#byKey.has(account.key)) throw new CascadeError('CASCADE_ERR_ACCOUNT_NAME_TAKEN', account.name);
    this.#byKey.set(account.key, account.id);
    this.#accounts.set(account.id, { ...account });
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    this.#check();
    const a = this.#accounts.get(id);
    return a && { ...a };
  }

  async findAccount(key: string): Promise<AccountRecord | undefined> {
    this.#check();
    const id = this.#byKey.get(key);
    return id === undefined ? undefined : this.getAccount(id);
  }

  async listAccounts(offset: number, limit: number): Promise<AccountRecord[]> {
    this.#check();
    // Map order is insertion order: creation order.
    return [...this.#accounts.values()].slice(offset, offset + limit).map((a) => ({ ...a }));
  }

  async countAccounts(): Promise<number> {
    this.#check();
    return this.#accounts.size;
  }

  async putSession(session: SessionRecord): Promise<void> {
    this.#check();
    this.#sessions.set(session.id, { ...session });
    // Expired sessions are dropped as others are written: the map stays as big as the live ones.
    if (this.#sessions.size % 64 === 0) for (const [id, s] of this.#sessions) if (s.expiresAt <= session.createdAt) this.#sessions.delete(id);
  }

  async getSession(id: string, now: number): Promise<SessionRecord | undefined> {
    this.#check();
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= now) {
      this.#sessions.delete(id);
      return undefined;
    }
    return { ...s };
  }

  async deleteSession(id: string): Promise<void> {
    this.#check();
    this.#sessions.delete(id);
  }

  async addToken(accountId: string, token: AccountTokenRecord): Promise<void> {
    this.#check();
    const list = [{ ...token }, ...(this.#tokens.get(accountId) ?? [])];
    this.#tokens.set(accountId, list.slice(0, MAX_ACCOUNT_TOKENS));
  }

  async listTokens(accountId: string): Promise<AccountTokenRecord[]> {
    this.#check();
    return (this.#tokens.get(accountId) ?? []).map((t) => ({ ...t }));
  }

  async revokeToken(tokenId: string, revokedAt: number): Promise<boolean> {
    this.#check();
    if (this.#revoked.has(tokenId)) return false;
    this.#revoked.set(tokenId, revokedAt);
    for (const h of [...this.#revocationHandlers]) h(tokenId);
    return true;
  }

  async revokedTokens(): Promise<Map<string, number>> {
    this.#check();
    return new Map(this.#revoked);
  }

  onRevocation(handler: (tokenId: string) => void): () => void {
    this.#revocationHandlers.add(handler);
    return () => this.#revocationHandlers.delete(handler);
  }

  async hit(key: string, windowMs: number, now: number): Promise<number> {
    this.#check();
    const window = Math.floor(now / windowMs);
    const w = this.#windows.get(key);
    if (!w || w.window !== window) {
      this.#windows.set(key, { window, count: 1, expiresAt: (window + 1) * windowMs });
      if (this.#windows.size % 256 === 0) for (const [k, v] of this.#windows) if (v.expiresAt <= now) this.#windows.delete(k);
      return 1;
    }
    return ++w.count;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#revocationHandlers.clear();
  }

  #check(): void {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', 'store closed');
  }
}
