import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { balanceOf, type LedgerStore, type ViewerReceiptInput } from '../src/credits/LedgerStore.js';
import { memoryLedgers, redisLedgers, type Stores } from './accountFixtures.js';
import { NOW, rejectionCode } from './storeFixtures.js';

// The same scenarios against both stores: they must behave identically.
const factories: Stores<LedgerStore>[] = [memoryLedgers(), redisLedgers(() => inject('redisUrl'))];

const DAY = '2023-11-14';
const HOUR = 3_600_000;
/** 1 point per GB: 1 micro-point per kB. */
const MICRO_PER_BYTE = 1 / 1000;

describe.each(factories)('LedgerStore contract: $name', (factory) => {
  let store: LedgerStore;
  const extra: LedgerStore[] = [];

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

  const bind = (session: string, nodeId = 'r1', o: { viewer?: string; streamId?: string; now?: number } = {}) =>
    store.bindViewer({ session, viewer: o.viewer ?? session, streamId: o.streamId ?? 's', nodeId, now: o.now ?? NOW, ttlMs: HOUR });
  /** A receipt of `bytes` at `now`, rate cap 1000 bytes/ms (8 Mbit/s), grace 10 s. */
  const receipt = (session: string, seq: number, bytes: number, o: Partial<ViewerReceiptInput> = {}) =>
    store.viewerReceipt({
      session,
      viewer: session,
      streamId: 's',
      nodeId: 'r1',
      seq,
      bytes,
      maxBytes: 10_000_000,
      accountId: 'a_alice',
      now: NOW + 5000 * seq,
      maxBytesPerMs: 1000,
      graceMs: 10_000,
      ttlMs: HOUR,
      ...o,
    });
  const count = (bytesOut: number, now = NOW, alive = true, nodeId = 'r1') => store.nodeCounts([{ nodeId, accountId: 'a_alice', bytesOut, alive }], now, 60_000);
  const settle = (now = NOW + HOUR) => store.settle(now, DAY, MICRO_PER_BYTE);

  describe('entries', () => {
    it('open() creates an entry with the grant and one history entry, once', async () => {
      expect(await store.open('a_alice', 5_000_000, NOW)).toBe(true);
      expect(await store.open('a_alice', 5_000_000, NOW + 1)).toBe(false);
      expect(await store.get('a_alice')).toEqual({ accountId: 'a_alice', earned: 0, granted: 5_000_000, spent: 0, bytes: 0, viewersServed: 0, onlineMs: 0 });
      expect(await store.history('a_alice', 10)).toEqual([{ at: NOW, kind: 'grant', micro: 5_000_000, bytes: 0, ref: 'signup' }]);
      expect(await store.get('a_nobody')).toBeUndefined();
      expect((await store.getMany(['a_nobody', 'a_alice'])).map((e) => e.accountId)).toEqual(['a_alice']);
    });
  });

  describe('watching', () => {
    it('chargeWatch() charges once per account and stream and records it', async () => {
      await store.open('a_alice', 12_000_000, NOW);
      expect(await store.chargeWatch('a_alice', 's1', 5_000_000, NOW, DAY)).toEqual({ charged: true, balance: 7_000_000 });
      expect(await store.chargeWatch('a_alice', 's1', 5_000_000, NOW + 1, DAY)).toEqual({ charged: false, balance: 7_000_000 });
      expect(await store.chargeWatch('a_alice', 's2', 5_000_000, NOW + 2, DAY)).toEqual({ charged: true, balance: 2_000_000 });
      expect((await store.get('a_alice'))?.spent).toBe(10_000_000);
      expect((await store.daily('a_alice', [DAY, '2023-11-15']))).toEqual([
        { day: DAY, earned: 0, spent: 10_000_000, bytes: 0 },
        { day: '2023-11-15', earned: 0, spent: 0, bytes: 0 },
      ]);
      expect((await store.history('a_alice', 2)).map((h) => [h.kind, h.ref])).toEqual([
        ['spend', 's2'],
        ['spend', 's1'],
      ]);
    });

    it('chargeWatch() with a short balance, or no entry, rejects CASCADE_ERR_CREDITS_INSUFFICIENT and charges nothing', async () => {
      await store.open('a_alice', 4_000_000, NOW);
      expect(await rejectionCode(store.chargeWatch('a_alice', 's1', 5_000_000, NOW, DAY))).toBe('CASCADE_ERR_CREDITS_INSUFFICIENT');
      expect(await rejectionCode(store.chargeWatch('a_nobody', 's1', 1, NOW, DAY))).toBe('CASCADE_ERR_CREDITS_INSUFFICIENT');
      expect(balanceOf((await store.get('a_alice'))!)).toBe(4_000_000);
      // Paying later still works: the refusal marked nothing as paid.
      expect((await store.chargeWatch('a_alice', 's1', 4_000_000, NOW, DAY)).charged).toBe(true);
    });
  });

  describe('receipts', () => {
    beforeEach(async () => {
      await store.open('a_alice', 0, NOW);
    });

    it('count only for a viewer placed on that node for that stream', async () => {
      expect(await receipt('v1', 1, 1000)).toEqual({ outcome: 'unplaced', counted: 0 });
      await bind('v1', 'r1');
      expect(await receipt('v1', 1, 1000, { nodeId: 'r2' })).toEqual({ outcome: 'unplaced', counted: 0 });
      expect(await receipt('v1', 1, 1000, { streamId: 's2' })).toEqual({ outcome: 'unplaced', counted: 0 });
      expect(await receipt('v1', 1, 1000)).toEqual({ outcome: 'counted', counted: 1000 });
    });

    it('count once: a sequence number seen (or an older one) is a duplicate, after a restart too', async () => {
      await bind('v1');
      expect(await receipt('v1', 1, 1000)).toEqual({ outcome: 'counted', counted: 1000 });
      expect(await receipt('v1', 2, 1000)).toEqual({ outcome: 'counted', counted: 1000 });
      expect(await receipt('v1', 2, 1000)).toEqual({ outcome: 'duplicate', counted: 0 });
      expect(await receipt('v1', 1, 1000)).toEqual({ outcome: 'duplicate', counted: 0 });
      store = await factory.restart(store);
      expect(await receipt('v1', 2, 1000)).toEqual({ outcome: 'duplicate', counted: 0 });
      expect(await receipt('v1', 3, 1000)).toEqual({ outcome: 'counted', counted: 1000 });
      await count(10_000);
      expect(await settle()).toEqual([{ nodeId: 'r1', accountId: 'a_alice', bytes: 3000, micro: 3 }]);
    });

    it('one receipt sent through two instances at once counts once', async () => {
      const other = await factory.second(store);
      if (other !== store) extra.push(other);
      await bind('v1');
      const both = await Promise.all([receipt('v1', 1, 1000), other.viewerReceipt({ session: 'v1', viewer: 'v1', streamId: 's', nodeId: 'r1', seq: 1, bytes: 1000, maxBytes: 1e7, accountId: 'a_alice', now: NOW + 5000, maxBytesPerMs: 1000, graceMs: 10_000, ttlMs: HOUR })]);
      expect(both.map((r) => r.outcome).sort()).toEqual(['counted', 'duplicate']);
    });

    it('are capped per receipt, and by the rate over the time since the placement', async () => {
      await bind('v1');
      expect(await receipt('v1', 1, 5000, { maxBytes: 4000 })).toEqual({ outcome: 'capped', counted: 4000 });
      // 1 byte/ms, no grace: 10 s after the placement at most 10,000 bytes in all, 4,000 taken.
      expect(await receipt('v1', 2, 20_000, { maxBytesPerMs: 1, graceMs: 0, now: NOW + 10_000 })).toEqual({ outcome: 'capped', counted: 6000 });
      expect(await receipt('v1', 3, 500, { maxBytesPerMs: 1, graceMs: 0, now: NOW + 10_000 })).toEqual({ outcome: 'capped', counted: 0 });
    });

    it('are capped per viewer and stream across the nodes it was placed on', async () => {
      await bind('v1', 'r1', { viewer: 'acct-bob' });
      await bind('v2', 'r2', { viewer: 'acct-bob' });
      const o = { maxBytesPerMs: 1, graceMs: 0, now: NOW + 10_000, viewer: 'acct-bob' };
      expect(await receipt('v1', 1, 7000, o)).toEqual({ outcome: 'counted', counted: 7000 });
      expect(await receipt('v2', 1, 7000, { ...o, nodeId: 'r2' })).toEqual({ outcome: 'capped', counted: 3000 });
    });

    it('count for nobody when the node earns for no account', async () => {
      await bind('v1');
      expect(await receipt('v1', 1, 1000, { accountId: null })).toEqual({ outcome: 'counted', counted: 1000 });
      await count(5000);
      expect(await settle()).toEqual([]);
      expect((await store.get('a_alice'))?.bytes).toBe(0);
    });
  });

  describe('settlement', () => {
    beforeEach(async () => {
      await store.open('a_alice', 0, NOW);
      await bind('v1');
      await bind('v2');
    });

    it('credits min(confirmed, claimed): a node claiming twice what its viewers confirm earns what they confirm', async () => {
      await receipt('v1', 1, 300_000);
      await receipt('v2', 1, 200_000);
      await count(1_000_000);
      expect(await settle()).toEqual([{ nodeId: 'r1', accountId: 'a_alice', bytes: 500_000, micro: 500 }]);
      expect(await settle()).toEqual([]);
      const e = await store.get('a_alice');
      expect(e).toMatchObject({ earned: 500, bytes: 500_000, viewersServed: 2 });
      expect(await store.daily('a_alice', [DAY])).toEqual([{ day: DAY, earned: 500, spent: 0, bytes: 500_000 }]);
      expect(await store.history('a_alice', 5)).toEqual([{ at: NOW + HOUR, kind: 'credit', micro: 500, bytes: 500_000, ref: 'r1' }]);
    });

    it('credits min(confirmed, claimed): viewers confirming more than the node counted earn it its own count, the rest once it counts it', async () => {
      await receipt('v1', 1, 800_000);
      await count(300_000);
      expect((await settle()).map((s) => s.bytes)).toEqual([300_000]);
      await count(1_000_000, NOW + 1000);
      expect((await settle()).map((s) => s.bytes)).toEqual([500_000]);
      expect((await store.get('a_alice'))?.bytes).toBe(800_000);
    });

    it('a viewer placed once is served once, however many receipts', async () => {
      for (let seq = 1; seq <= 5; seq++) await receipt('v1', seq, 1000);
      expect((await store.get('a_alice'))?.viewersServed).toBe(1);
    });

    it('a node that restarted (its running total fell) counts from zero again', async () => {
      await receipt('v1', 1, 500_000);
      await count(100_000);
      await count(50_000, NOW + 1000); // restarted: 50,000 since
      expect((await settle()).map((s) => s.bytes)).toEqual([150_000]);
    });

    it('counts time online between reports no further apart than the gap', async () => {
      await count(0, NOW);
      await count(0, NOW + 30_000);
      await count(0, NOW + 200_000); // 170 s gap: the relay was away
      await count(0, NOW + 210_000, false);
      await count(0, NOW + 220_000);
      expect((await store.get('a_alice'))?.onlineMs).toBe(30_000);
    });

    it('starts a node afresh when it belongs to another account', async () => {
      await store.open('a_bob', 0, NOW);
      await receipt('v1', 1, 500_000);
      await store.nodeCounts([{ nodeId: 'r1', accountId: 'a_bob', bytesOut: 500_000, alive: true }], NOW, 60_000);
      expect(await settle()).toEqual([]);
    });
  });

  describe('child confirmations', () => {
    beforeEach(async () => {
      await store.open('a_alice', 0, NOW);
    });
    const child = (bytesFromParent: number, now: number, accountId: string | null = 'a_alice') =>
      store.childConfirmation({ streamId: 's', childId: 'c1', parentId: 'r1', bytesFromParent, accountId, now, maxBytesPerMs: 1, graceMs: 1000, ttlMs: HOUR });

    it('count the growth of the running total, capped by the rate over the time between reports', async () => {
      expect(await child(500, NOW)).toEqual({ outcome: 'counted', counted: 500 });
      expect(await child(5_000, NOW + 10_000)).toEqual({ outcome: 'counted', counted: 4_500 });
      expect(await child(50_000, NOW + 11_000)).toEqual({ outcome: 'capped', counted: 2_000 });
      // A smaller total: a new pipe, counted from zero.
      expect(await child(700, NOW + 12_000)).toEqual({ outcome: 'counted', counted: 700 });
      await count(100_000);
      expect((await settle()).map((s) => s.bytes)).toEqual([7_700]);
    });

    it('count at first sight only what the grace allows', async () => {
      expect(await child(1e9, NOW)).toEqual({ outcome: 'capped', counted: 1000 });
    });
  });

  describe('close()', () => {
    it('makes every later call reject with CASCADE_ERR_STORE_UNAVAILABLE', async () => {
      await store.close();
      await store.close();
      expect(await rejectionCode(store.get('a'))).toBe('CASCADE_ERR_STORE_UNAVAILABLE');
      expect(await rejectionCode(settle())).toBe('CASCADE_ERR_STORE_UNAVAILABLE');
    });
  });
});
