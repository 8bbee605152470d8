import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { MAX_ACCOUNT_TOKENS, type AccountStore } from '../src/accounts/AccountStore.js';
import { account, memoryAccounts, redisAccounts, type Stores } from './accountFixtures.js';
import { NOW, rejectionCode } from './storeFixtures.js';

// The same scenarios against both stores: they must behave identically.
const factories: Stores<AccountStore>[] = [memoryAccounts(), redisAccounts(() => inject('redisUrl'))];

describe.each(factories)('AccountStore contract: $name', (factory) => {
  let store: AccountStore;
  const extra: AccountStore[] = [];

  beforeEach(async () => {
    await factory.wipe();
    store = await factory.create();
  });
  afterEach(async () => {
    for (const s of extra.splice(0)) await s.close();
    await store.close();
  });
  afterAll(async () => {
    await factory.dispose();
  });

  describe('accounts', () => {
    it('createAccount() stores the account; getAccount() and findAccount() (by folded name) return it', async () => {
      const a = account('Alice');
      await store.createAccount(a);
      expect(await store.getAccount(a.id)).toEqual(a);
      expect(await store.findAccount('alice')).toEqual(a);
      expect(await store.findAccount('Alice')).toBeUndefined(); // callers fold the name
      expect(await store.getAccount('a_nobody')).toBeUndefined();
      expect(await store.countAccounts()).toBe(1);
    });

    it('createAccount() with a taken name rejects CASCADE_ERR_ACCOUNT_NAME_TAKEN and keeps the first', async () => {
      await store.createAccount(account('alice'));
      const dup = { ...account('ALICE'), id: 'a_other' };
      expect(await rejectionCode(store.createAccount(dup))).toBe('CASCADE_ERR_ACCOUNT_NAME_TAKEN');
      expect((await store.findAccount('alice'))?.id).toBe('a_alice');
      expect(await store.getAccount('a_other')).toBeUndefined();
    });

    it('of ten sign-ups racing for one name (through two stores where they share state) exactly one wins', async () => {
      const other = await factory.second(store);
      if (other !== store) extra.push(other);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).createAccount({ ...account('bob'), id: `a_bob${i}` })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(await store.countAccounts()).toBe(1);
    });

    it('listAccounts() pages through accounts in creation order', async () => {
      for (const [i, n] of ['carol', 'alice', 'bob'].entries()) await store.createAccount(account(n, NOW + i));
      expect((await store.listAccounts(0, 10)).map((a) => a.name)).toEqual(['carol', 'alice', 'bob']);
      expect((await store.listAccounts(1, 1)).map((a) => a.name)).toEqual(['alice']);
      expect(await store.listAccounts(3, 10)).toEqual([]);
    });
  });

  describe('sessions', () => {
    it('putSession() keeps a session until its expiry; deleteSession() ends it', async () => {
      const s = { id: 'h1', accountId: 'a_alice', createdAt: Date.now(), expiresAt: Date.now() + 60_000 };
      await store.putSession(s);
      expect(await store.getSession('h1', Date.now())).toEqual(s);
      expect(await store.getSession('h1', s.expiresAt)).toBeUndefined();
      expect(await store.getSession('nope', Date.now())).toBeUndefined();
      await store.deleteSession('h1');
      expect(await store.getSession('h1', Date.now())).toBeUndefined();
    });
  });

  describe('tokens and revocations', () => {
    it('addToken() lists newest first and keeps the newest MAX_ACCOUNT_TOKENS', async () => {
      for (let i = 0; i < MAX_ACCOUNT_TOKENS + 3; i++) {
        await store.addToken('a_alice', { id: `t${i}`, kind: 'relay', issuedAt: NOW + i, expiresAt: NOW + i + 1000 });
      }
      const list = await store.listTokens('a_alice');
      expect(list).toHaveLength(MAX_ACCOUNT_TOKENS);
      expect(list[0]).toEqual({ id: `t${MAX_ACCOUNT_TOKENS + 2}`, kind: 'relay', issuedAt: NOW + MAX_ACCOUNT_TOKENS + 2, expiresAt: NOW + MAX_ACCOUNT_TOKENS + 1002 });
      expect(await store.listTokens('a_bob')).toEqual([]);
    });

    it('revokeToken() is permanent, resolves true once, and every store on the state hears it once', async () => {
      const other = await factory.second(store);
      if (other !== store) extra.push(other);
      const heard: string[] = [];
      const unsubscribe = other.onRevocation((id) => heard.push(id));
      expect(await store.revokeToken('t1', NOW)).toBe(true);
      expect(await store.revokeToken('t1', NOW + 5)).toBe(false);
      await expect.poll(() => heard.length, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(1);
      expect(heard).toEqual(['t1']);
      expect(await other.revokedTokens()).toEqual(new Map([['t1', NOW]]));
      unsubscribe();
      await store.revokeToken('t2', NOW);
      await delay(100);
      expect(heard).toEqual(['t1']);
    });
  });

  describe('rate-limit counters', () => {
    it('hit() counts per key and fixed window, atomically across stores', async () => {
      const other = await factory.second(store);
      if (other !== store) extra.push(other);
      const counts = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).hit('signin:addr:1.2.3.4', 60_000, NOW)));
      expect(counts.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(await store.hit('signin:addr:5.6.7.8', 60_000, NOW)).toBe(1);
      // The next window starts again at 1.
      const nextWindow = (Math.floor(NOW / 60_000) + 1) * 60_000;
      expect(await store.hit('signin:addr:1.2.3.4', 60_000, nextWindow)).toBe(1);
    });
  });

  describe('close()', () => {
    it('makes every later call reject with CASCADE_ERR_STORE_UNAVAILABLE', async () => {
      await store.close();
      await store.close();
      expect(await rejectionCode(store.getAccount('a'))).toBe('CASCADE_ERR_STORE_UNAVAILABLE');
      expect(await rejectionCode(store.revokeToken('t', NOW))).toBe('CASCADE_ERR_STORE_UNAVAILABLE');
    });
  });
});
