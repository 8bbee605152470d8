import { Redis } from 'ioredis';
import { CascadeError, type Logger } from '@cascade/protocol';
import { RedisLink, subscriberOptions } from '../store/redisLink.js';
import { ACCOUNT_KEYS as K, ACCOUNTS_LUA } from './accountsLua.js';
import { MAX_ACCOUNT_TOKENS, type AccountRecord, type AccountStore, type AccountTokenRecord, type SessionRecord } from './AccountStore.js';

export interface RedisAccountStoreOptions {
  url: string;
  /** ms before a command counts as failed. Default 2000. */
  commandTimeoutMs?: number;
}

/**
 * The deployment account store: accounts, sessions and revocations in Redis, shared by every
 * controller instance. Revocations are published on `cascade:revocations` so that every
 * instance refuses a revoked token as soon as the message arrives (RevocationList reloads the
 * whole set every few seconds too, for messages lost while a connection was down).
 */
export class RedisAccountStore implements AccountStore {
  readonly kind = 'redis' as const;
  readonly #link: RedisLink;
  readonly #sub: Redis;
  readonly #handlers = new Set<(id: string) => void>();
  #closed = false;

  static async connect(options: RedisAccountStoreOptions, deps: { logger: Logger }): Promise<RedisAccountStore> {
    const store = new RedisAccountStore(options, deps.logger);
    try {
      await store.#link.connect(options.url);
      await store.#sub.connect();
      await store.#sub.subscribe(K.revocations);
    } catch (err) {
      await store.close();
      throw err instanceof CascadeError ? err : new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', 'cannot subscribe to revocations', { cause: err });
    }
    return store;
  }

  private constructor(options: RedisAccountStoreOptions, logger: Logger) {
    const log = logger.child({ component: 'RedisAccountStore' });
    this.#link = new RedisLink(options.url, { name: 'cascadeAccounts', lua: ACCOUNTS_LUA }, { logger: log, ...(options.commandTimeoutMs ? { commandTimeoutMs: options.commandTimeoutMs } : {}) });
    this.#sub = new Redis(options.url, subscriberOptions());
    this.#sub.on('error', () => {});
    this.#sub.on('message', (_channel: string, tokenId: string) => {
      for (const h of [...this.#handlers]) {
        try {
          h(tokenId);
        } catch (err) {
          log.error({ err }, 'revocation handler threw');
        }
      }
    });
  }

  // ------------------------------------------------------------------ accounts

  async createAccount(account: AccountRecord): Promise<void> {
    const r = await this.#link.script('create', account.id, account.key, JSON.stringify(account), account.createdAt);
    if (r === 'TAKEN') throw new CascadeError('CASCADE_ERR_ACCOUNT_NAME_TAKEN', account.name);
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    const raw = await this.#link.call(() => this.#link.redis.hget(K.accounts, id));
    return raw ? (JSON.parse(raw) as AccountRecord) : undefined;
  }

  async findAccount(key: string): Promise<AccountRecord | undefined> {
    const id = await this.#link.call(() => this.#link.redis.hget(K.names, key));
    return id ? this.getAccount(id) : undefined;
  }

  async listAccounts(offset: number, limit: number): Promise<AccountRecord[]> {
    if (limit <= 0) return [];
    const ids = await this.#link.call(() => this.#link.redis.zrange(K.order, String(offset), String(offset + limit - 1)));
    if (ids.length === 0) return [];
    const raws = await this.#link.call(() => this.#link.redis.hmget(K.accounts, ...ids));
    return raws.filter((r): r is string => !!r).map((r) => JSON.parse(r) as AccountRecord);
  }

  async countAccounts(): Promise<number> {
    return this.#link.call(() => this.#link.redis.zcard(K.order));
  }

  // ------------------------------------------------------------------ sessions

  async putSession(session: SessionRecord): Promise<void> {
    await this.#link.call(() => this.#link.redis.set(K.session(session.id), JSON.stringify(session), 'PXAT', session.expiresAt));
  }

  async getSession(id: string, now: number): Promise<SessionRecord | undefined> {
    const raw = await this.#link.call(() => this.#link.redis.get(K.session(id)));
    if (!raw) return undefined;
    const s = JSON.parse(raw) as SessionRecord;
    // Redis expires keys on its own clock; the caller's clock decides too.
    return s.expiresAt > now ? s : undefined;
  }

  async deleteSession(id: string): Promise<void> {
    await this.#link.call(() => this.#link.redis.del(K.session(id)));
  }

  // ------------------------------------------------------------------ tokens, revocations

  async addToken(accountId: string, token: AccountTokenRecord): Promise<void> {
    await this.#link.script('addToken', accountId, JSON.stringify(token), MAX_ACCOUNT_TOKENS);
  }

  async listTokens(accountId: string): Promise<AccountTokenRecord[]> {
    const raws = await this.#link.call(() => this.#link.redis.lrange(K.tokens(accountId), 0, -1));
    return raws.map((r) => JSON.parse(r) as AccountTokenRecord);
  }

  async revokeToken(tokenId: string, revokedAt: number): Promise<boolean> {
    return Number(await this.#link.script('revoke', tokenId, revokedAt)) === 1;
  }

  async revokedTokens(): Promise<Map<string, number>> {
    const all = await this.#link.call(() => this.#link.redis.hgetall(K.revoked));
    return new Map(Object.entries(all).map(([id, at]) => [id, Number(at)]));
  }

  onRevocation(handler: (tokenId: string) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  // ------------------------------------------------------------------ rate limits

  async hit(key: string, windowMs: number, now: number): Promise<number> {
    return Number(await this.#link.script('hit', key, windowMs, now));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.clear();
    this.#link.close();
    this.#sub.disconnect();
  }
}
