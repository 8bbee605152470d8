import { silentLogger } from '@cascade/protocol';
import { startRedis, waitFor, type RedisServer } from '@cascade/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAccountStore } from '../src/accounts/MemoryAccountStore.js';
import { CreditService } from '../src/credits/CreditService.js';
import { RedisLedgerStore } from '../src/credits/RedisLedgerStore.js';
import { MemoryTopologyStore } from '../src/store/MemoryTopologyStore.js';
import { account } from './accountFixtures.js';
import { nodeRecord, stats, TTL } from './storeFixtures.js';

/**
 * Receipts across a controller restart and a Redis crash (kill -9, restarted from its
 * append-only file, as a deployment keeping a ledger runs it): every receipt is counted
 * exactly once, whatever was replayed, and settled credits are neither lost nor doubled.
 */
describe('the ledger across a controller restart and a Redis kill -9', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis({ persist: true });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('counts each receipt once and settles each byte once', async () => {
    let now = Date.now();
    const topology = new MemoryTopologyStore();
    const accounts = new MemoryAccountStore();
    await accounts.createAccount(account('alice'));
    await topology.upsertNode({ ...nodeRecord('alice-1', { volunteer: true }), owner: 'alice' }, 'ready', TTL, now);
    const relayCounted = async (bytesOut: number) => topology.heartbeat('alice-1', { stats: { ...stats(1), bytesOut }, streams: [] }, TTL, now);
    const options = { pointsPerGB: 1, watchCost: 0, maxStreamKbps: 8000, receiptIntervalMs: 5000, settleIntervalMs: 30_000 };
    /** A controller instance: its own connection to Redis, nothing else kept. */
    const controller = async () => {
      const ledger = await RedisLedgerStore.connect({ url: redis.url }, { logger: silentLogger });
      return { ledger, credits: new CreditService(options, { ledger, topology, accounts, logger: silentLogger, clock: { now: () => now } }) };
    };
    const receipt = (seq: number) => ({ streamId: 'stream1', nodeId: 'alice-1', seq, intervalMs: 5000, bytes: 1_000_000 + seq, packets: 1000 });
    const sent = (n: number) => Array.from({ length: n }, (_, i) => 1_000_000 + i + 1).reduce((a, b) => a + b, 0);

    let c = await controller();
    await c.ledger.open('a_alice', 0, now);
    await c.credits.viewerPlaced({ session: 'viewer1', streamId: 'stream1', nodeId: 'alice-1' });
    for (let seq = 1; seq <= 4; seq++) {
      now += 5000;
      expect((await c.credits.receipt('viewer1', receipt(seq))).counted).toBe(1_000_000 + seq);
    }
    await relayCounted(100_000_000);
    expect((await c.credits.settle()).map((s) => s.bytes)).toEqual([sent(4)]);
    for (let seq = 5; seq <= 6; seq++) {
      now += 5000;
      await c.credits.receipt('viewer1', receipt(seq));
    }

    // The controller restarts: a new instance, the same Redis.
    await c.ledger.close();
    c = await controller();
    for (let seq = 1; seq <= 6; seq++) expect(await c.credits.receipt('viewer1', receipt(seq))).toMatchObject({ counted: 0, code: 'CASCADE_ERR_CREDITS_RECEIPT_DUPLICATE' });

    // Redis crashes and comes back from its append-only file; the instance reconnects by itself.
    await redis.kill();
    now += 5000;
    expect(await c.credits.receipt('viewer1', receipt(7)).catch((e: { code: string }) => e.code)).toBe('CASCADE_ERR_STORE_UNAVAILABLE');
    await redis.restart();
    await waitFor(async () => (await c.ledger.get('a_alice').catch(() => undefined)) !== undefined, { what: 'the ledger back after the Redis restart' });
    for (let seq = 1; seq <= 6; seq++) expect((await c.credits.receipt('viewer1', receipt(seq))).code).toBe('CASCADE_ERR_CREDITS_RECEIPT_DUPLICATE');
    // Receipt 7 was refused while Redis was away: sent again, it counts.
    expect((await c.credits.receipt('viewer1', receipt(7))).counted).toBe(1_000_007);
    expect((await c.credits.settle()).map((s) => s.bytes)).toEqual([sent(7) - sent(4)]);
    expect(await c.credits.settle()).toEqual([]);
    expect(await c.ledger.get('a_alice')).toMatchObject({ bytes: sent(7), earned: Math.round(sent(4) / 1000) + Math.round((sent(7) - sent(4)) / 1000), viewersServed: 1 });
    await c.ledger.close();
  });
});
