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

/** Stores of one process: a second instance or a restart sees the same in-process state. */
function inProcess<S>(create: () => S): Stores<S> {
  return {
    name: 'memory',
    create: async () => create(),
    second: async (first) => first,
    restart: async (store) => store,
    wipe: async () => {},
    dispose: async () => {},
  };
}

/** Stores on the shared Redis: each instance its own connection, a restart a new one. */
function onRedis<S extends { close(): Promise<void> }>(url: () => string, connect: (url: string) => Promise<S>): Stores<S> {
  const create = () => connect(url());
  return {
    name: 'redis',
    create,
    second: () => create(),
    restart: async (store) => {
      await store.close();
      return create();
    },
    ...redisAdmin(url),
  };
}

export const memoryAccounts = (): Stores<AccountStore> => inProcess(() => new MemoryAccountStore());
export const redisAccounts = (url: () => string): Stores<AccountStore> => onRedis(url, (u) => RedisAccountStore.connect({ url: u }, { logger: silentLogger }));
export const memoryLedgers = (): Stores<LedgerStore> => inProcess(() => new MemoryLedgerStore());
export const redisLedgers = (url: () => string): Stores<LedgerStore> => onRedis(url, (u) => RedisLedgerStore.connect({ url: u }, { logger: silentLogger }));

export function account(name: string, createdAt = 1_700_000_000_000): AccountRecord {
  return { id: `a_${name}`, name, key: name.toLowerCase(), passwordHash: `$argon2id$fake$${name}`, createdAt };
}
