import { Redis } from 'ioredis';
import { CascadeError, silentLogger } from '@cascade/protocol';
import { startRedis, waitFor, type RedisServer } from '@cascade/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { generateTicketKey } from '../src/auth/TicketSigner.js';
import { MemoryTopologyStore } from '../src/store/MemoryTopologyStore.js';
import { RedisTopologyStore } from '../src/store/RedisTopologyStore.js';
import { KEYS } from '../src/store/redisScript.js';
import { TopologyController, type AssignEvent, type TopologyControllerOptions } from '../src/TopologyController.js';
import type { NodeView } from '../src/types.js';
import { runPlacementSim, treeViolations } from '../src/sim/placementSim.js';
import { addNode, carried, collector, NOW, policy, snapshot, streamRecord, TTL } from './storeFixtures.js';

const connect = () => RedisTopologyStore.connect({ url: inject('redisUrl') }, { logger: silentLogger });

let admin: Redis;
beforeAll(() => {
  admin = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
});
afterAll(() => {
  admin.disconnect();
});

describe('two RedisTopologyStore instances on one Redis', () => {
  let a: RedisTopologyStore;
  let b: RedisTopologyStore;
  beforeEach(async () => {
    await admin.flushdb();
    [a, b] = await Promise.all([connect(), connect()]);
  });
  afterEach(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  /** Origin (budget 20) and 60 relays: 12 dedicated (30 viewers, 6 children), 48 volunteers (10, 1). */
  const population = async () => {
    await addNode(a, 'o', { kind: 'origin', maxViewers: 20, maxChildren: 3 });
    for (let i = 0; i < 60; i++) {
      const dedicated = i % 5 === 0;
      await addNode(i % 2 ? a : b, `r${String(i).padStart(2, '0')}`, {
        volunteer: !dedicated,
        maxViewers: dedicated ? 30 : 10,
        maxChildren: dedicated ? 6 : 1,
      });
    }
    await b.putStream(streamRecord('s', 'o'));
    // 20 + 12 * 30 + 48 * 10
    return 860;
  };

  it('placing concurrently through both never exceeds a capacity or K, and the counts add up', async () => {
    const capacity = await population();
    const K = 3;
    const held = new Map<string, number>();
    let rejected = 0;
    const attached: string[] = [];
    // 1000 joins (more than the capacity), half through each store, all in flight together;
    // one viewer in four leaves again right after joining.
    const results = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const store = i % 2 ? a : b;
        try {
          const r = await store.placeViewer('s', policy(K), []);
          if (r.attached) attached.push(r.attached.nodeId);
          if (i % 4 === 0) {
            await store.releaseViewer('s', r.nodeId);
            return 'left';
          }
          held.set(r.nodeId, (held.get(r.nodeId) ?? 0) + 1);
          return 'placed';
        } catch (err) {
          if (!(err instanceof CascadeError) || err.code !== 'CASCADE_ERR_NODE_CAPACITY') throw err;
          rejected++;
          return 'rejected';
        }
      }),
    );
    const tree = await a.getTree('s');
    const nodes = await b.listNodes(NOW);
    expect(treeViolations(tree, nodes, 'o', K)).toEqual([]);
    expect(new Set(attached).size).toBe(attached.length);
    expect(tree.length).toBe(attached.length + 1);
    // Every viewer placed and still there is counted, on its node and in the tree, nowhere else.
    for (const e of tree) expect([e.nodeId, e.viewers]).toEqual([e.nodeId, held.get(e.nodeId) ?? 0]);
    for (const n of nodes) expect([n.id, n.load.viewers]).toEqual([n.id, held.get(n.id) ?? 0]);
    const placed = results.filter((r) => r === 'placed').length;
    expect([...held.values()].reduce((x, y) => x + y, 0)).toBe(placed);
    expect(placed).toBeLessThanOrEqual(capacity);
    expect(rejected).toBe(results.filter((r) => r === 'rejected').length);
    expect(rejected).toBeGreaterThan(0);
  });

  it('two TopologyController instances place consistently and both hear every assignment', async () => {
    await population();
    const options: TopologyControllerOptions = {
      maxChildren: 3,
      heartbeatIntervalMs: 1000,
      nodeTtlMs: 10_000,
      demoteCpu: 0.9,
      demoteLossRate: 0.1,
      viewerKbps: 1700,
      ticketTtlSec: 60,
      watchTokenRequired: false,
      endedRetentionMs: 60_000,
    };
    const clock = { now: () => NOW };
    const [c1, c2] = await Promise.all([
      TopologyController.create(options, { store: a, logger: silentLogger, clock }),
      TopologyController.create(options, { store: b, logger: silentLogger, clock }),
    ]);
    // One ticket key for the deployment, whichever instance created it.
    expect(c1.tickets.publicKey).toBe(c2.tickets.publicKey);
    const heard1 = collectAssign(c1);
    const heard2 = collectAssign(c2);
    const placements = await Promise.all(
      Array.from({ length: 400 }, (_, i) => (i % 2 ? c1 : c2).placeViewer({ streamId: 's' }).catch((err: unknown) => err)),
    );
    const ok = placements.filter((p): p is Awaited<ReturnType<TopologyController['placeViewer']>> => !(p instanceof Error));
    expect(ok.length).toBe(400);
    const tree = await a.getTree('s');
    expect(treeViolations(tree, await a.listNodes(NOW), 'o', 3)).toEqual([]);
    expect(tree.reduce((n, e) => n + e.viewers, 0)).toBe(400);
    expect(await c1.viewerCount('s')).toBe(400);
    // Each relay added to the tree was announced once, and both instances heard it.
    const relays = tree.filter((e) => e.parent !== null);
    await Promise.all([heard1.until(relays.length), heard2.until(relays.length)]);
    for (const heard of [heard1, heard2]) {
      expect(heard.events.map((e) => e.nodeId).sort()).toEqual(relays.map((e) => e.nodeId).sort());
      for (const e of heard.events) expect(e.parent.nodeId).toBe(relays.find((r) => r.nodeId === e.nodeId)?.parent);
    }
    c1.close();
    c2.close();
  });

  it('getOrCreateTicketKey() gives concurrent instances one key', async () => {
    const keys = await Promise.all([
      a.getOrCreateTicketKey(generateTicketKey),
      b.getOrCreateTicketKey(generateTicketKey),
      a.getOrCreateTicketKey(generateTicketKey),
      b.getOrCreateTicketKey(generateTicketKey),
    ]);
    for (const k of keys) expect(k).toEqual(keys[0]);
    expect(await admin.hgetall(KEYS.ticketKey)).toEqual({ private: keys[0]!.privateKey, public: keys[0]!.publicKey });
  });

  it('getOrCreateTicketKey() completes a key left half written', async () => {
    await admin.hset(KEYS.ticketKey, 'private', 'orphaned-private');
    const key = await a.getOrCreateTicketKey(() => ({ privateKey: 'p1', publicKey: 'P1' }));
    expect(key).toEqual({ privateKey: 'p1', publicKey: 'P1' });
    expect(await b.getOrCreateTicketKey(() => ({ privateKey: 'p2', publicKey: 'P2' }))).toEqual(key);
  });

  it('an event published through one instance reaches the subscribers of the other', async () => {
    const heard = collector();
    b.subscribe(heard.handler);
    await a.publish({ type: 'nodegone', nodeId: 'r7' });
    await heard.until(1);
    expect(heard.events).toEqual([{ type: 'nodegone', nodeId: 'r7' }]);
  });
});

describe('the ticket key when Redis loses it', () => {
  let redis: RedisServer;
  let own: Redis;
  const stores: RedisTopologyStore[] = [];
  const open = async (url: string) => {
    const s = await RedisTopologyStore.connect({ url }, { logger: silentLogger });
    stores.push(s);
    return s;
  };
  beforeAll(async () => {
    redis = await startRedis();
    own = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    own.on('error', () => {});
  });
  afterAll(async () => {
    own?.disconnect();
    await redis?.stop();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it('a running instance puts its key back after Redis restarts empty, and an instance started later adopts it', async () => {
    const a = await open(redis.url);
    const key = await a.getOrCreateTicketKey(() => ({ privateKey: 'p1', publicKey: 'P1' }));
    await redis.restart();
    await waitFor(async () => (await own.hget(KEYS.ticketKey, 'public')) === 'P1', { what: 'the key back in Redis' });
    const later = await open(redis.url);
    expect(await later.getOrCreateTicketKey(() => ({ privateKey: 'p2', publicKey: 'P2' }))).toEqual(key);
    expect(await own.hgetall(KEYS.ticketKey)).toEqual({ private: 'p1', public: 'P1' });
  });

  it('an instance that finds the store emptied (a heartbeat of an unknown node) puts its key back', async () => {
    const a = await open(redis.url);
    await addNode(a, 'o', { kind: 'origin' });
    const key = await a.getOrCreateTicketKey(() => ({ privateKey: 'p1', publicKey: 'P1' }));
    await own.flushdb();
    expect(await a.heartbeat('o', snapshot(0, []), TTL, NOW)).toBe(false);
    const later = await open(redis.url);
    expect(await later.getOrCreateTicketKey(() => ({ privateKey: 'p2', publicKey: 'P2' }))).toEqual(key);
  });

  it('an instance using a key file (it never asked the store for one) writes none', async () => {
    const a = await open(redis.url);
    await own.flushdb();
    await addNode(a, 'o', { kind: 'origin' });
    await own.flushdb();
    expect(await a.heartbeat('o', snapshot(0, []), TTL, NOW)).toBe(false);
    expect(await own.exists(KEYS.ticketKey)).toBe(0);
  });
});

describe('RedisTopologyStore round trips', () => {
  let store: RedisTopologyStore;
  beforeEach(async () => {
    await admin.flushdb();
    store = await connect();
  });
  afterEach(async () => {
    await store.close();
    vi.restoreAllMocks();
  });

  /** Counts requests to Redis: each command on its own, a pipeline (or multi) as one. */
  const roundTrips = async (fn: () => Promise<unknown>): Promise<number> => {
    const spy = vi.spyOn(Redis.prototype, 'sendCommand');
    try {
      await fn();
      const pipelines = new Set<unknown>();
      let single = 0;
      for (const [, stream] of spy.mock.calls) {
        if ((stream as { isPipeline?: boolean } | undefined)?.isPipeline) pipelines.add(stream);
        else single++;
      }
      return single + pipelines.size;
    } finally {
      spy.mockRestore();
    }
  };

  it('listNodes() and getNode() take a bounded number of round trips, however many nodes and streams', async () => {
    // Three streams, each carried by all 30 relays: r00-r09 under the origin, r10-r29 two under each of those.
    const streams = ['s1', 's2', 's3'];
    const relay = (i: number) => `r${String(i).padStart(2, '0')}`;
    const parentOf = (i: number, s: string) => (i < 10 ? `o-${s}` : relay(i % 10));
    for (const s of streams) {
      await addNode(store, `o-${s}`, { kind: 'origin', maxViewers: 0, maxChildren: 50 });
      await store.putStream(streamRecord(s, `o-${s}`));
    }
    for (let i = 0; i < 30; i++) await addNode(store, relay(i), { maxViewers: 10, maxChildren: 10 });
    // Built as after a Redis restart: from what both ends of each edge report.
    for (const s of streams) {
      const kids = Array.from({ length: 10 }, (_, i) => relay(i));
      await store.heartbeat(`o-${s}`, snapshot(0, [carried(s, null, 0, 0, kids)]), TTL, NOW);
    }
    for (let i = 0; i < 30; i++) {
      const kids = i < 10 ? [relay(i + 10), relay(i + 20)] : [];
      await store.heartbeat(relay(i), snapshot(i % 4, streams.map((s) => carried(s, parentOf(i, s), i < 10 ? 1 : 2, 0, kids))), TTL, NOW);
    }
    const trees = (await Promise.all(streams.map((s) => store.getTree(s)))).flat();
    expect(trees.length).toBe(3 * 31);
    const childrenOf = (id: string) => trees.filter((e) => e.parent === id).length;

    let views: NodeView[] = [];
    expect(await roundTrips(async () => (views = await store.listNodes(NOW)))).toBeLessThanOrEqual(3);
    expect(views.length).toBe(33);
    for (const v of views) expect([v.id, v.load.children]).toEqual([v.id, childrenOf(v.id)]);
    expect(views.reduce((n, v) => n + v.load.children, 0)).toBe(3 * 30);
    expect(views.find((v) => v.id === 'r03')).toMatchObject({ load: { viewers: 3, children: 6 }, stats: { viewers: 3 }, alive: true });
    let one: NodeView | undefined;
    expect(await roundTrips(async () => (one = await store.getNode('r05', NOW)))).toBeLessThanOrEqual(2);
    expect(one).toEqual(views.find((v) => v.id === 'r05'));
  });
});

describe('placement simulation on Redis', () => {
  let redis: RedisTopologyStore;
  beforeEach(async () => {
    await admin.flushdb();
    redis = await connect();
  });
  afterEach(async () => {
    await redis.close();
  });

  it('builds exactly the tree MemoryTopologyStore builds for the same joins and leaves', async () => {
    const options = { relays: 120, joins: 4000, maxChildren: 3, seed: 7, leaveProbability: 0.3, checkEvery: 1000 };
    const memory = new MemoryTopologyStore();
    const [m, r] = [await runPlacementSim(memory, options), await runPlacementSim(redis, options)];
    const sorted = async (s: { getTree(id: string): Promise<{ nodeId: string }[]> }) =>
      (await s.getTree('sim-stream')).sort((x, y) => x.nodeId.localeCompare(y.nodeId));
    expect(await sorted(redis)).toEqual(await sorted(memory));
    const figures = ({ elapsedMs, operationsPerSec, placementsPerSec, ...rest }: typeof m) => rest;
    expect(figures(r)).toEqual(figures(m));
    expect(r.violations).toEqual([]);
    await memory.close();
  });

  it('200 mixed relays and 20000 joins stay within K at the origin, the depth bound and every capacity', async () => {
    const r = await runPlacementSim(redis, { relays: 200, joins: 20_000, maxChildren: 3, seed: 42 });
    console.log(
      `redis store: ${r.placementsPerSec} placements/s (${r.operationsPerSec} ops/s), ${r.placements} placed, ${r.rejected} rejected, ` +
        `${r.relaysInTree} relays in the tree, max depth ${r.maxDepth} (bound ${r.depthBound}, minimal ${r.minimalDepth})`,
    );
    expect(r.violations).toEqual([]);
    expect(r.originChildren).toBeLessThanOrEqual(3);
    expect(r.maxChildrenPerNode).toBeLessThanOrEqual(3);
    expect(r.maxDepth).toBeLessThanOrEqual(r.depthBound);
    expect(r.maxDepth).toBe(r.minimalDepth);
  });
});

function collectAssign(c: TopologyController) {
  const events: AssignEvent[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  c.on('assign', (e) => {
    events.push(e);
    for (const w of [...waiters]) if (events.length >= w.n) waiters.splice(waiters.indexOf(w), 1) && w.resolve();
  });
  const until = (n: number) => new Promise<void>((resolve) => (events.length >= n ? resolve() : waiters.push({ n, resolve })));
  return { events, until };
}
