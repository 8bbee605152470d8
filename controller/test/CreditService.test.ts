import { silentLogger, type CarriedStream } from '@cascade/protocol';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryAccountStore } from '../src/accounts/MemoryAccountStore.js';
import { CreditService, type CreditServiceOptions } from '../src/credits/CreditService.js';
import { MemoryLedgerStore } from '../src/credits/MemoryLedgerStore.js';
import { MemoryTopologyStore } from '../src/store/MemoryTopologyStore.js';
import { account } from './accountFixtures.js';
import { NOW, nodeRecord, stats, streamRecord, TTL } from './storeFixtures.js';

const OPTIONS: CreditServiceOptions = { pointsPerGB: 1, watchCost: 0, maxStreamKbps: 8000, receiptIntervalMs: 5000, settleIntervalMs: 30_000 };
const MB = 1_000_000;

/**
 * Origin `o` (no viewer budget, one relay slot) feeding alice's volunteer relay `alice-1`, which
 * feeds `c1` (bob's volunteer relay); `d1` is a dedicated relay of alice's, `ghost-1` a
 * volunteer relay whose owner has no account.
 */
describe('CreditService', () => {
  let now: number;
  let topology: MemoryTopologyStore;
  let accounts: MemoryAccountStore;
  let ledger: MemoryLedgerStore;
  let credits: CreditService;

  const relay = async (id: string, owner: string, volunteer: boolean, maxChildren = 1) => {
    await topology.upsertNode({ ...nodeRecord(id, { volunteer, maxViewers: 1, maxChildren }), owner }, 'ready', TTL, now);
  };
  /** The node's own running total, as its last heartbeat reported it. */
  const reports = async (id: string, bytesOut: number, streams: CarriedStream[] = []) => {
    await topology.heartbeat(id, { stats: { ...stats(0), bytesOut }, streams }, TTL, now);
  };
  const receipt = (nodeId: string, seq: number, bytes: number, extra: object = {}) => ({ streamId: 'st1', nodeId, seq, intervalMs: 5000, bytes, packets: Math.ceil(bytes / 1000), ...extra });

  beforeEach(async () => {
    now = NOW;
    topology = new MemoryTopologyStore();
    accounts = new MemoryAccountStore();
    ledger = new MemoryLedgerStore();
    for (const name of ['alice', 'bob']) {
      await accounts.createAccount(account(name));
      await ledger.open(`a_${name}`, 0, now);
    }
    await topology.upsertNode({ ...nodeRecord('o', { kind: 'origin', maxViewers: 0, maxChildren: 1 }), owner: 'origin' }, 'ready', TTL, now);
    await relay('alice-1', 'Alice', true, 2);
    await relay('c1', 'bob', true, 0);
    await topology.putStream(streamRecord('st1', 'o'));
    await topology.placeViewer('st1', { maxChildren: 2, now }, []);
    await topology.placeViewer('st1', { maxChildren: 2, now }, []);
    await relay('d1', 'alice', false);
    await relay('ghost-1', 'ghost', true);
    credits = new CreditService(OPTIONS, { ledger, topology, accounts, logger: silentLogger, clock: { now: () => now } });
  });

  it('the tree under test: o feeds alice-1, which feeds c1', async () => {
    const parents = Object.fromEntries((await topology.getTree('st1')).map((e) => [e.nodeId, e.parent]));
    expect(parents).toEqual({ o: null, 'alice-1': 'o', c1: 'alice-1' });
  });

  it("credits a volunteer's account with what its viewers confirm, at pointsPerGB", async () => {
    await credits.viewerPlaced({ session: 'v1', streamId: 'st1', nodeId: 'alice-1' });
    now += 5000;
    expect(await credits.receipt('v1', receipt('alice-1', 1, 4 * MB))).toEqual({ counted: 4 * MB });
    now += 5000;
    expect(await credits.receipt('v1', receipt('alice-1', 2, 4 * MB))).toEqual({ counted: 4 * MB });
    await reports('alice-1', 9 * MB);
    expect(await credits.settle()).toEqual([{ nodeId: 'alice-1', accountId: 'a_alice', bytes: 8 * MB, micro: 8000 }]);
    expect(await ledger.get('a_alice')).toMatchObject({ earned: 8000, bytes: 8 * MB, viewersServed: 1 });
  });

  it('a relay reporting twice its real bytes earns no more; a viewer replaying its receipts earns it nothing extra', async () => {
    await credits.viewerPlaced({ session: 'v1', streamId: 'st1', nodeId: 'alice-1' });
    now += 5000;
    await credits.receipt('v1', receipt('alice-1', 1, 3 * MB));
    for (let i = 0; i < 3; i++) expect(await credits.receipt('v1', receipt('alice-1', 1, 3 * MB))).toEqual({ counted: 0, code: 'CASCADE_ERR_CREDITS_RECEIPT_DUPLICATE' });
    await reports('alice-1', 6 * MB);
    expect((await credits.settle()).map((s) => s.bytes)).toEqual([3 * MB]);
  });

  it('the origin, dedicated relays and relays of no account earn nothing', async () => {
    for (const nodeId of ['o', 'd1', 'ghost-1']) {
      await credits.viewerPlaced({ session: `v-${nodeId}`, streamId: 'st1', nodeId });
      await reports(nodeId, 10 * MB);
    }
    now += 5000;
    for (const nodeId of ['o', 'd1', 'ghost-1']) expect(await credits.receipt(`v-${nodeId}`, receipt(nodeId, 1, MB))).toEqual({ counted: MB });
    expect(await credits.settle()).toEqual([]);
    expect((await ledger.get('a_alice'))?.bytes).toBe(0);
  });

  it('refuses malformed and impossible receipts, and receipts for a node the viewer was not placed on, with their codes', async () => {
    await credits.viewerPlaced({ session: 'v1', streamId: 'st1', nodeId: 'alice-1' });
    now += 5000;
    const invalid = { counted: 0, code: 'CASCADE_ERR_CREDITS_RECEIPT_INVALID' };
    expect(await credits.receipt('v1', { ...receipt('alice-1', 1, MB), bytes: -1 })).toEqual(invalid);
    expect(await credits.receipt('v1', { nodeId: 'alice-1' })).toEqual(invalid);
    expect(await credits.receipt('bad:session', receipt('alice-1', 1, MB))).toEqual(invalid);
    expect(await credits.receipt('v1', receipt('alice-1', 1, MB, { packets: 10 }))).toEqual(invalid);
    expect(await credits.receipt('v1', receipt('c1', 1, MB))).toEqual({ counted: 0, code: 'CASCADE_ERR_CREDITS_RECEIPT_UNPLACED' });
    expect(await credits.receipt('v2', receipt('alice-1', 1, MB))).toEqual({ counted: 0, code: 'CASCADE_ERR_CREDITS_RECEIPT_UNPLACED' });
    // None of that touched the real sequence: the first good receipt still counts.
    expect(await credits.receipt('v1', receipt('alice-1', 1, MB))).toEqual({ counted: MB });
  });

  it('caps a receipt at the stream rate × its interval, and at what the measured stream rate allows', async () => {
    await credits.viewerPlaced({ session: 'v1', streamId: 'st1', nodeId: 'alice-1' });
    now += 5000;
    // 8 Mbit/s × 5 s = 5 MB.
    expect(await credits.receipt('v1', receipt('alice-1', 1, 7 * MB))).toEqual({ counted: 5 * MB, code: 'CASCADE_ERR_CREDITS_RECEIPT_CAPPED' });
    // A stream measured at 1,600 kbit/s: at most 1.25 × that, 1.25 MB in 5 s.
    await credits.viewerPlaced({ session: 'v2', streamId: 'st1', nodeId: 'alice-1' });
    now += 5000;
    expect(await credits.receipt('v2', receipt('alice-1', 1, 2 * MB), { streamKbps: 1600 })).toEqual({ counted: 1.25 * MB, code: 'CASCADE_ERR_CREDITS_RECEIPT_CAPPED' });
  });

  it("credits a parent from its child relay's confirmation, only along an edge of the tree", async () => {
    const fromParent = (parentNodeId: string, bytesFromParent: number): CarriedStream => ({ streamId: 'st1', parentNodeId, depth: 2, viewers: 0, children: 0, bitrateOutKbps: 1000, bytesFromParent });
    await credits.childReport({ id: 'c1' }, [fromParent('alice-1', 1000)]);
    now += 10_000;
    await credits.childReport({ id: 'c1' }, [fromParent('alice-1', 2 * MB)]);
    // c1 vouching for a node that does not feed it counts for nobody.
    await credits.childReport({ id: 'c1' }, [fromParent('ghost-1', 5 * MB)]);
    await reports('alice-1', 10 * MB);
    expect(await credits.settle()).toEqual([{ nodeId: 'alice-1', accountId: 'a_alice', bytes: 2 * MB, micro: 2000 }]);
  });

  it('counts time online between settlements', async () => {
    await reports('alice-1', 0);
    await credits.settle();
    now += 30_000;
    await reports('alice-1', 0);
    await credits.settle();
    expect((await ledger.get('a_alice'))?.onlineMs).toBe(30_000);
  });

  it('chargeWatch(): free when watchCost is 0; otherwise once per stream, refused anonymous or short', async () => {
    expect(await credits.chargeWatch(undefined, 'st1')).toEqual({ charged: false });
    const paid = new CreditService({ ...OPTIONS, watchCost: 5 }, { ledger, topology, accounts, logger: silentLogger, clock: { now: () => now } });
    await expect(paid.chargeWatch(undefined, 'st1')).rejects.toMatchObject({ code: 'CASCADE_ERR_ACCOUNT_SIGNED_OUT' });
    await expect(paid.chargeWatch('a_alice', 'st1')).rejects.toMatchObject({ code: 'CASCADE_ERR_CREDITS_INSUFFICIENT' });
    await ledger.open('a_rich', 12_000_000, now);
    expect(await paid.chargeWatch('a_rich', 'st1')).toEqual({ charged: true, balance: 7_000_000 });
    expect(await paid.chargeWatch('a_rich', 'st1')).toEqual({ charged: false, balance: 7_000_000 });
  });

  it('close() stops settlements and is idempotent', () => {
    let closes = 0;
    credits.observer.on('close', () => closes++);
    credits.start();
    credits.close();
    credits.close();
    expect(closes).toBe(1);
  });
});
