import { Redis } from 'ioredis';
import { silentLogger } from '@cascade/protocol';
import type { AccountRecord, AccountStore } from '../src/accounts/AccountStore.js';
import { MemoryAccountStore } from '../src/accounts/MemoryAccountStore.js';
import { RedisAccountStore } from '../src/accounts/RedisAccountStore.js';
import type { LedgerStore } from '../src/credits/LedgerStore.js';
import { MemoryLedgerStore } from '../src/credits/MemoryLedgerStore.js';
import { RedisLedgerStore } from '../src/credits/RedisLedgerStore.js';

/**
 * How the account and ledger contract tests get their stores. For Redis, two stores made by
 * one factory share the server (two controller instances); `restart()` is a controller
 * restart: the old store closes, a new one opens on the same state (for memory: the same
 * store, since the in-process state is the process's own).
 */
export interface Stores<S> {
  name: 'memory' | 'redis';
  create(): Promise<S>;
  /** A second store on the same state where that exists (Redis); for memory the same store. */
  second(first: S): Promise<S>;
  restart(store: S): Promise<S>;
  wipe(): Promise<void>;
  dispose(): Promise<void>;
}

function redisAdmin(url: () => string) {
  let admin: Redis | undefined;
  return {
    wipe: async () => {
      admin ??= new Redis(url(), { maxRetriesPerRequest: 1 });
      await admin.flushdb();
    },
    dispose: async () => {
      admin?.disconnect();
      admin = undefined;
    },
  };
}

export function memoryAccounts(): Stores<AccountStore> {
  return {
    name: 'memory',
    create: async () => new MemoryAccountStore(),
    second: async (first) => first,
    restart: async (store) => store,
    wipe: async () => {},
    dispose: async () => {},
  };
}

export function redisAccounts(url: () => string): Stores<AccountStore> {
  const admin = redisAdmin(url);
  const create = () => RedisAccountStore.connect({ url: url() }, { logger: silentLogger });
  return {
    name: 'redis',
    create,
    second: () => create(),
    restart: async (store) => {
      await store.close();
      return create();
    },
    ...admin,
  };
}

export function memoryLedgers(): Stores<LedgerStore> {
  return {
    name: 'memory',
    create: async () => new MemoryLedgerStore(),
    second: async (first) => first,
    restart: async (store) => store,
    wipe: async () => {},
    dispose: async () => {},
  };
}

export function redisLedgers(url: () => string): Stores<LedgerStore> {
  const admin = redisAdmin(url);
  const create = () => RedisLedgerStore.connect({ url: url() }, { logger: silentLogger });
  return {
    name: 'redis',
    create,
    second: () => create(),
    restart: async (store) => {
      await store.close();
      return create();
    },
    ...admin,
  };
}

export function account(name: string, createdAt = 1_700_000_000_000): AccountRecord {
  return { id: `a_${name}`, name, key: name.toLowerCase(), passwordHash: `$argon2id$fake$${name}`, createdAt };
}
