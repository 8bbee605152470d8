import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { RECONCILE_GRACE_MS } from '../src/store/scores.js';
import type { TopologyStore } from '../src/store/TopologyStore.js';
import type { TopologyEvent, TreeEntry } from '../src/types.js';
import {
  addNode,
  carried,
  collector,
  memoryFactory,
  nodeRecord,
  NOW,
  policy,
  redisFactory,
  rejectionCode,
  snapshot,
  streamRecord,
  TTL,
  type StoreFactory,
} from './storeFixtures.js';

// The same scenarios against both stores: they must behave identically.
const factories: StoreFactory[] = [memoryFactory(), redisFactory(() => inject('redisUrl'))];

describe.each(factories)('TopologyStore contract: $name', (factory) => {
  let store: TopologyStore;

  beforeEach(async () => {
    await factory.wipe();
    store = await factory.create();
  });
  afterEach(async () => {
    await store.close();
  });
  afterAll(async () => {
    await factory.dispose();
  });

  const tree = async (streamId: string): Promise<Map<string, TreeEntry>> =>
    new Map((await store.getTree(streamId)).map((e) => [e.nodeId, e]));
  const place = async (streamId: string, K: number, exclude: string[] = [], now = NOW) =>
    store.placeViewer(streamId, policy(K, now), exclude);
  /** Origin `o` (viewer budget `budget`, K child slots) and live stream `s` rooted at it. */
  const originWithStream = async (budget = 0, maxChildren = 8, s = 's', o = 'o') => {
    await addNode(store, o, { kind: 'origin', maxViewers: budget, maxChildren });
    await store.putStream(streamRecord(s, o));
  };

  // ------------------------------------------------------------------ nodes

  describe('nodes', () => {
    it('upsertNode() stores the record; getNode() returns it with status, liveness and no load', async () => {
      const rec = await addNode(store, 'r1', { volunteer: true, maxViewers: 7, maxChildren: 2, status: 'probing' });
      const view = await store.getNode('r1', NOW);
      expect(view).toMatchObject({ ...rec, status: 'probing', alive: true, expiresAt: NOW + TTL, load: { viewers: 0, children: 0 } });
      expect(view?.stats).toBeUndefined();
    });

    it('getNode() of an unknown node resolves undefined', async () => {
      expect(await store.getNode('nobody', NOW)).toBeUndefined();
    });

    it('listNodes() lists live and dead nodes; expiredNodes() only those whose liveness ran out', async () => {
      await addNode(store, 'short', { ttlMs: 1000 });
      await addNode(store, 'long', { ttlMs: 5000 });
      const at = NOW + 1000; // 'short' expires exactly now: expiry is exclusive
      const views = await store.listNodes(at);
      expect(views.map((v) => [v.id, v.alive]).sort()).toEqual([
        ['long', true],
        ['short', false],
      ]);
      expect(await store.expiredNodes(at)).toEqual(['short']);
      expect(await store.expiredNodes(NOW + 999)).toEqual([]);
    });

    it('upsertNode() again refreshes liveness and status and keeps the viewer count', async () => {
      await originWithStream(5);
      await place('s', 2);
      await store.upsertNode(nodeRecord('o', { kind: 'origin', maxViewers: 5 }), 'draining', TTL, NOW + 4000);
      const view = await store.getNode('o', NOW + 4000);
      expect(view).toMatchObject({ status: 'draining', expiresAt: NOW + 4000 + TTL, load: { viewers: 1 } });
    });

    it('setNodeStatus() changes the status and ignores unknown nodes', async () => {
      await addNode(store, 'r1');
      await store.setNodeStatus('r1', 'demoted');
      await store.setNodeStatus('nobody', 'ready');
      expect((await store.getNode('r1', NOW))?.status).toBe('demoted');
      expect(await store.getNode('nobody', NOW)).toBeUndefined();
    });
  });

  // ------------------------------------------------------------------ streams

  describe('streams', () => {
    it('putStream() stores the stream and roots its tree at the origin, depth 0', async () => {
      await originWithStream();
      expect(await store.getStream('s')).toEqual(streamRecord('s', 'o'));
      expect(await store.listStreams()).toEqual([streamRecord('s', 'o')]);
      expect(await store.getTree('s')).toEqual([{ nodeId: 'o', parent: null, depth: 0, viewers: 0, children: 0, since: NOW }]);
      expect(await store.nodeStreams('o')).toEqual(['s']);
    });

    it('putStream() again updates the record and keeps the tree', async () => {
      await originWithStream(5);
      await place('s', 2);
      await store.putStream(streamRecord('s', 'o', { state: 'reconnecting', updatedAt: NOW + 1 }));
      expect((await store.getStream('s'))?.state).toBe('reconnecting');
      expect((await tree('s')).get('o')?.viewers).toBe(1);
    });

    it('deleteStream() forgets the stream, its tree and which nodes carried it', async () => {
      await originWithStream(0);
      await addNode(store, 'r1');
      await place('s', 2);
      await store.deleteStream('s');
      expect(await store.getStream('s')).toBeUndefined();
      expect(await store.listStreams()).toEqual([]);
      expect(await store.getTree('s')).toEqual([]);
      expect(await store.nodeStreams('o')).toEqual([]);
      expect(await store.nodeStreams('r1')).toEqual([]);
      expect((await store.getNode('o', NOW))?.load.children).toBe(0);
    });

    it("deleteStream() frees the child slots its tree used in the nodes' other streams", async () => {
      // r1 feeds at most one child overall. It carries stream b, then gets a child in stream a.
      await addNode(store, 'o1', { kind: 'origin', maxViewers: 0 });
      await addNode(store, 'o2', { kind: 'origin', maxViewers: 0 });
      await store.putStream(streamRecord('a', 'o1'));
      await store.putStream(streamRecord('b', 'o2'));
      await addNode(store, 'r1', { maxViewers: 2, maxChildren: 1 });
      await addNode(store, 'leaf', { maxViewers: 5, maxChildren: 0 });
      expect((await place('b', 1)).attached).toMatchObject({ nodeId: 'r1', parentId: 'o2' });
      expect((await place('a', 1)).attached).toMatchObject({ nodeId: 'r1', parentId: 'o1' });
      expect((await place('a', 1)).attached).toMatchObject({ nodeId: 'leaf', parentId: 'r1' });
      // r1 has no child slot left, in b either.
      expect(await rejectionCode(place('b', 1))).toBe('CASCADE_ERR_NODE_CAPACITY');
      await store.deleteStream('a');
      expect((await place('b', 1)).attached).toMatchObject({ nodeId: 'leaf', parentId: 'r1' });
    });
  });

  // ------------------------------------------------------------------ placement

  describe('placeViewer()', () => {
    it('fills the origin up to its budget first', async () => {
      await originWithStream(3);
      await addNode(store, 'r1');
      for (let i = 0; i < 3; i++) {
        const r = await place('s', 2);
        expect(r.nodeId).toBe('o');
        expect(r.attached).toBeUndefined();
      }
      const fourth = await place('s', 2);
      expect(fourth.nodeId).toBe('r1');
      expect((await store.getNode('o', NOW))?.load.viewers).toBe(3);
    });

    it('returns the stored stream and, when it attaches a relay, its parent and child media IP', async () => {
      await originWithStream(1);
      const r1 = await addNode(store, 'r1');
      expect(await place('s', 2)).toEqual({ nodeId: 'o', stream: streamRecord('s', 'o') });
      expect(await place('s', 2)).toEqual({
        nodeId: 'r1',
        stream: streamRecord('s', 'o'),
        attached: { nodeId: 'r1', parentId: 'o', depth: 1, childIp: r1.mediaIp },
      });
      const t = await tree('s');
      expect(t.get('r1')).toEqual({ nodeId: 'r1', parent: 'o', depth: 1, viewers: 1, children: 0, since: NOW });
      expect(t.get('o')?.children).toBe(1);
      expect(await store.nodeStreams('r1')).toEqual(['s']);
    });

    it('serves from the shallowest relay with room before deeper ones', async () => {
      // K = 1 makes a chain: o -> a -> b -> c.
      await originWithStream(0, 1);
      await addNode(store, 'a', { maxViewers: 1, maxChildren: 5 });
      await addNode(store, 'b', { maxViewers: 1, maxChildren: 4 });
      await addNode(store, 'c', { maxViewers: 3, maxChildren: 3 });
      expect((await place('s', 1)).attached).toMatchObject({ nodeId: 'a', parentId: 'o', depth: 1 });
      expect((await place('s', 1)).attached).toMatchObject({ nodeId: 'b', parentId: 'a', depth: 2 });
      expect((await place('s', 1)).attached).toMatchObject({ nodeId: 'c', parentId: 'b', depth: 3 });
      await store.releaseViewer('s', 'a');
      // c (depth 3) has room for two more, but a (depth 1) is shallower.
      expect(await place('s', 1)).toMatchObject({ nodeId: 'a' });
      expect(await place('s', 1)).toMatchObject({ nodeId: 'c' });
    });

    it('serves the least loaded of the relays at the same depth', async () => {
      await originWithStream(0, 2);
      await addNode(store, 'x', { maxViewers: 2, maxChildren: 3 });
      await addNode(store, 'y', { maxViewers: 4, maxChildren: 2 });
      expect((await place('s', 2)).attached?.nodeId).toBe('x');
      expect((await place('s', 2)).nodeId).toBe('x');
      expect((await place('s', 2)).attached).toMatchObject({ nodeId: 'y', depth: 1 });
      await store.releaseViewer('s', 'x');
      // x is half full, y a quarter.
      expect((await place('s', 2)).nodeId).toBe('y');
    });

    it('attaches relays under the shallowest parent with a free slot, at most K per parent', async () => {
      await originWithStream(0, 8);
      const ids = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
      for (const id of ids) await addNode(store, id, { maxViewers: 1, maxChildren: 8 });
      const attached = [];
      for (let i = 0; i < ids.length; i++) attached.push((await place('s', 2)).attached);
      expect(attached.map((a) => [a?.nodeId, a?.parentId, a?.depth])).toEqual([
        ['r1', 'o', 1],
        ['r2', 'o', 1],
        // depth 1 parents, fewest children first
        ['r3', 'r1', 2],
        ['r4', 'r2', 2],
        ['r5', 'r1', 2],
        ['r6', 'r2', 2],
      ]);
      const t = await tree('s');
      expect([t.get('o')?.children, t.get('r1')?.children, t.get('r2')?.children]).toEqual([2, 2, 2]);
      expect(await rejectionCode(place('s', 2))).toBe('CASCADE_ERR_NODE_CAPACITY');
    });

    it("respects a parent's own child capacity when it is below K", async () => {
      await originWithStream(0, 1);
      await addNode(store, 'p', { maxViewers: 1, maxChildren: 1 });
      await addNode(store, 'l1', { maxViewers: 1, maxChildren: 0 });
      await addNode(store, 'l2', { maxViewers: 1, maxChildren: 0 });
      expect((await place('s', 3)).attached).toMatchObject({ nodeId: 'p', parentId: 'o' });
      expect((await place('s', 3)).attached).toMatchObject({ parentId: 'p', depth: 2 });
      // o and p have used their one slot each and the leaves have none, although K is 3.
      expect(await rejectionCode(place('s', 3))).toBe('CASCADE_ERR_NODE_CAPACITY');
      expect((await store.getNode('p', NOW))?.load.children).toBe(1);
    });

    it('adds dedicated relays before volunteers, those able to feed most children first', async () => {
      await originWithStream(0, 8);
      await addNode(store, 'v-big', { volunteer: true, maxViewers: 1, maxChildren: 50 });
      await addNode(store, 'd-small', { maxViewers: 1, maxChildren: 2 });
      await addNode(store, 'd-big', { maxViewers: 1, maxChildren: 6 });
      await addNode(store, 'v-small', { volunteer: true, maxViewers: 1, maxChildren: 0 });
      const order = [];
      for (let i = 0; i < 4; i++) order.push((await place('s', 8)).attached?.nodeId);
      expect(order).toEqual(['d-big', 'd-small', 'v-big', 'v-small']);
    });

    it('prefers dedicated parents to volunteers at equal depth, then the shallower volunteer to deeper nodes', async () => {
      await originWithStream(0, 2);
      await addNode(store, 'd', { maxViewers: 1, maxChildren: 2 });
      await addNode(store, 'v', { volunteer: true, maxViewers: 1, maxChildren: 2 });
      expect((await place('s', 2)).attached?.nodeId).toBe('d');
      expect((await place('s', 2)).attached?.nodeId).toBe('v');
      for (const id of ['n1', 'n2', 'n3']) await addNode(store, id, { maxViewers: 1, maxChildren: 2 });
      const parents = [];
      for (let i = 0; i < 3; i++) parents.push((await place('s', 2)).attached?.parentId);
      // d before v although v has fewer children; v (depth 1) before n1 (depth 2).
      expect(parents).toEqual(['d', 'd', 'v']);
    });

    it('never places on or attaches under excluded nodes', async () => {
      await originWithStream(1, 2);
      await addNode(store, 'r1', { maxViewers: 10 });
      await addNode(store, 'r2', { maxViewers: 10 });
      // The origin has room but is excluded, and no other node could be a parent.
      expect(await rejectionCode(place('s', 2, ['o']))).toBe('CASCADE_ERR_NODE_CAPACITY');
      expect(await place('s', 2)).toMatchObject({ nodeId: 'o' });
      expect(await place('s', 2)).toMatchObject({ nodeId: 'r1', attached: { parentId: 'o' } });
      // r1 has room but is excluded (as a parent too): r2 goes under o.
      expect(await place('s', 2, ['r1'])).toMatchObject({ nodeId: 'r2', attached: { parentId: 'o' } });
      expect(await rejectionCode(place('s', 2, ['r1', 'r2']))).toBe('CASCADE_ERR_NODE_CAPACITY');
      expect(await place('s', 2, ['r2'])).toMatchObject({ nodeId: 'r1' });
    });

    it.each(['draining', 'demoted', 'probing'] as const)('skips %s nodes for viewers and as parents', async (status) => {
      await originWithStream(0, 1);
      await addNode(store, 'a', { maxViewers: 1, maxChildren: 4 });
      await addNode(store, 'b', { maxViewers: 1, maxChildren: 3 });
      await addNode(store, 'c', { maxViewers: 5, maxChildren: 2, status });
      expect((await place('s', 1)).attached?.nodeId).toBe('a');
      await store.releaseViewer('s', 'a');
      await store.setNodeStatus('a', status);
      // a has room but may not serve, and it is the only parent with a free slot (K = 1).
      expect(await rejectionCode(place('s', 1))).toBe('CASCADE_ERR_NODE_CAPACITY');
      await store.setNodeStatus('a', 'ready');
      expect(await place('s', 1)).toMatchObject({ nodeId: 'a' });
      expect((await place('s', 1)).attached).toMatchObject({ nodeId: 'b', parentId: 'a' });
      await store.setNodeStatus('c', 'ready');
      expect((await place('s', 1)).attached).toMatchObject({ nodeId: 'c', parentId: 'b' });
    });

    it('skips nodes whose liveness ran out, for viewers and as parents', async () => {
      await originWithStream(1, 1);
      await addNode(store, 'r1', { maxViewers: 1, ttlMs: 1000 });
      await addNode(store, 'r2', { maxViewers: 1, ttlMs: 5000 });
      await addNode(store, 'r3', { maxViewers: 1, ttlMs: 60_000 });
      expect(await place('s', 1, [], NOW + 1000)).toMatchObject({ nodeId: 'o' });
      // r1 comes first (same score, name order) but its liveness ends at NOW + 1000.
      expect((await place('s', 1, [], NOW + 1000)).attached).toMatchObject({ nodeId: 'r2', parentId: 'o' });
      // At NOW + 5000 r2, the only parent with a free slot, is dead.
      expect(await rejectionCode(place('s', 1, [], NOW + 5000))).toBe('CASCADE_ERR_NODE_CAPACITY');
      expect((await place('s', 1, [], NOW + 4999)).attached).toMatchObject({ nodeId: 'r3', parentId: 'r2' });
    });

    it('rejects CASCADE_ERR_STREAM_NOT_FOUND for an unknown stream', async () => {
      await addNode(store, 'o', { kind: 'origin' });
      expect(await rejectionCode(place('nope', 2))).toBe('CASCADE_ERR_STREAM_NOT_FOUND');
    });

    it('rejects CASCADE_ERR_STREAM_ENDED for an ended stream', async () => {
      await addNode(store, 'o', { kind: 'origin' });
      await store.putStream(streamRecord('s', 'o', { state: 'ended', endedAt: NOW }));
      expect(await rejectionCode(place('s', 2))).toBe('CASCADE_ERR_STREAM_ENDED');
    });

    it('rejects CASCADE_ERR_NODE_CAPACITY when no node has room and no relay can be added', async () => {
      await originWithStream(1, 2);
      await place('s', 2);
      expect(await rejectionCode(place('s', 2))).toBe('CASCADE_ERR_NODE_CAPACITY');
      // The failed attempt changed nothing.
      expect(await store.getTree('s')).toEqual([{ nodeId: 'o', parent: null, depth: 0, viewers: 1, children: 0, since: NOW }]);
    });

    it('re-creates the root when the origin was removed and registered again', async () => {
      await originWithStream(2, 2);
      await store.removeNode('o');
      await addNode(store, 'o', { kind: 'origin', maxViewers: 2 });
      expect(await place('s', 2, [], NOW + 5)).toMatchObject({ nodeId: 'o' });
      expect((await tree('s')).get('o')).toMatchObject({ parent: null, depth: 0, viewers: 1 });
    });
  });

  describe('releaseViewer()', () => {
    it('uncounts the viewer on the node and in the tree, never below zero, and frees its room', async () => {
      await originWithStream(1, 2);
      await addNode(store, 'r1', { maxViewers: 1 });
      await place('s', 2);
      expect((await place('s', 2)).nodeId).toBe('r1');
      await store.releaseViewer('s', 'o');
      await store.releaseViewer('s', 'o');
      expect((await tree('s')).get('o')?.viewers).toBe(0);
      expect((await store.getNode('o', NOW))?.load.viewers).toBe(0);
      expect((await place('s', 2)).nodeId).toBe('o');
      await store.releaseViewer('s', 'r1');
      expect((await place('s', 2)).nodeId).toBe('r1');
    });

    it('ignores unknown streams and nodes', async () => {
      await store.releaseViewer('nope', 'nobody');
      expect(await store.listNodes(NOW)).toEqual([]);
    });
  });

  // ------------------------------------------------------------------ failures and moves

  describe('removeNode()', () => {
    it("returns the node's children as orphans and its streams, and uncounts it at its parent", async () => {
      await originWithStream(0, 1);
      await addNode(store, 'a', { maxViewers: 1 });
      await addNode(store, 'b', { maxViewers: 1 });
      await addNode(store, 'c', { maxViewers: 1 });
      await place('s', 1); // a under o
      await place('s', 1); // b under a
      await place('s', 1); // c under b
      const r = await store.removeNode('b');
      expect(r).toEqual({ orphans: [{ streamId: 's', childId: 'c' }], streams: ['s'] });
      const t = await tree('s');
      expect(t.has('b')).toBe(false);
      expect(t.get('a')?.children).toBe(0);
      expect((await store.getNode('a', NOW))?.load.children).toBe(0);
      expect(await store.getNode('b', NOW)).toBeUndefined();
      expect(await store.nodeStreams('b')).toEqual([]);
      expect(await store.expiredNodes(NOW + TTL)).not.toContain('b');
    });

    it('of an unknown or idle node returns nothing to do', async () => {
      await addNode(store, 'idle');
      expect(await store.removeNode('idle')).toEqual({ orphans: [], streams: [] });
      expect(await store.removeNode('nobody')).toEqual({ orphans: [], streams: [] });
    });

    it('frees its slot at the parent so that the next relay can take it', async () => {
      await originWithStream(0, 1);
      await addNode(store, 'a', { maxViewers: 1 });
      await place('s', 1);
      await store.removeNode('a');
      await addNode(store, 'b', { maxViewers: 1 });
      expect((await place('s', 1)).attached).toMatchObject({ nodeId: 'b', parentId: 'o' });
    });
  });

  describe('reparent()', () => {
    /** o -> a -> b -> c (K = 1), plus d under o when K allows two. */
    const chain = async () => {
      await originWithStream(0, 4);
      for (const id of ['a', 'b', 'c']) await addNode(store, id, { maxViewers: 1, maxChildren: 4 });
      for (let i = 0; i < 3; i++) await place('s', 1);
    };

    it("moves the child under the best parent, fixing both parents' counts and the whole subtree's depths", async () => {
      await chain();
      // K = 2 now gives the origin a free slot: b (with c below it) moves up.
      expect(await store.reparent('s', 'b', policy(2, NOW + 10), ['a'])).toEqual({ parentId: 'o', depth: 1 });
      const t = await tree('s');
      expect(t.get('b')).toMatchObject({ parent: 'o', depth: 1, since: NOW + 10 });
      expect(t.get('c')).toMatchObject({ parent: 'b', depth: 2 });
      expect(t.get('a')?.children).toBe(0);
      expect(t.get('o')?.children).toBe(2);
    });

    it('never picks the child itself or one of its descendants', async () => {
      await chain();
      // With K = 1 and o excluded, only a itself and c (a descendant of a) have free slots.
      expect(await store.reparent('s', 'a', policy(1), ['o'])).toBeNull();
      const t = await tree('s');
      expect([t.get('a')?.parent, t.get('b')?.parent, t.get('c')?.parent]).toEqual(['o', 'a', 'b']);
    });

    it('never picks a descendant however deep the subtree is', async () => {
      // K = 1 and 70 relays: a chain deeper than any fixed walk limit.
      await originWithStream(0, 1);
      for (let i = 0; i < 70; i++) await addNode(store, `r${String(i).padStart(2, '0')}`, { maxViewers: 1, maxChildren: 1 });
      for (let i = 0; i < 70; i++) await place('s', 1);
      const t = await tree('s');
      expect(t.get('r69')?.depth).toBe(70);
      // The only free slot is r69's, at the bottom of r00's subtree.
      expect(await store.reparent('s', 'r00', policy(1), ['o'])).toBeNull();
    });

    it('respects K and the parents’ own capacity, resolving null when no node has a free slot', async () => {
      await originWithStream(0, 1);
      await addNode(store, 'a', { maxViewers: 1, maxChildren: 1 });
      await addNode(store, 'b', { maxViewers: 1, maxChildren: 0 });
      await addNode(store, 'c', { maxViewers: 1, maxChildren: 0 });
      await place('s', 3); // a under o (o's capacity is 1)
      await place('s', 3); // b under a (a's capacity is 1)
      // K = 3, but o and a are at their own capacity and c is not in the tree.
      expect(await store.reparent('s', 'b', policy(3), ['a'])).toBeNull();
      expect((await tree('s')).get('b')).toMatchObject({ parent: 'a', depth: 2 });
    });

    it('never gives the origin a parent', async () => {
      await originWithStream(0, 1);
      await addNode(store, 'a', { maxViewers: 1 });
      await addNode(store, 'b', { maxViewers: 1 });
      await place('s', 1); // a under o
      await place('s', 1); // b under a
      // b is an orphan now: not below o any more, with a free slot.
      await store.removeNode('a');
      expect(await store.reparent('s', 'o', policy(1), [])).toBeNull();
      expect((await tree('s')).get('o')).toMatchObject({ parent: null, depth: 0, children: 0 });
      expect(await store.reparent('s', 'b', policy(1), ['a'])).toEqual({ parentId: 'o', depth: 1 });
    });

    it('adopts an orphan of a removed node', async () => {
      await chain();
      const { orphans } = await store.removeNode('b');
      expect(orphans).toEqual([{ streamId: 's', childId: 'c' }]);
      expect(await store.reparent('s', 'c', policy(1), ['b'])).toEqual({ parentId: 'a', depth: 2 });
      expect((await tree('s')).get('a')?.children).toBe(1);
    });

    it('resolves null for a node not in the tree', async () => {
      await originWithStream();
      expect(await store.reparent('s', 'nobody', policy(2), [])).toBeNull();
      expect(await store.reparent('nope', 'nobody', policy(2), [])).toBeNull();
    });
  });

  describe('detach()', () => {
    it('refuses while the node feeds children, then removes it and uncounts it at its parent', async () => {
      await originWithStream(0, 1);
      await addNode(store, 'a', { maxViewers: 1 });
      await addNode(store, 'b', { maxViewers: 1 });
      await place('s', 1);
      await place('s', 1);
      expect(await store.detach('s', 'a')).toBe(false);
      expect(await store.detach('s', 'b')).toBe(true);
      expect((await tree('s')).get('a')?.children).toBe(0);
      expect(await store.nodeStreams('b')).toEqual([]);
      expect(await store.detach('s', 'a')).toBe(true);
      expect([...(await tree('s')).keys()]).toEqual(['o']);
      expect(await store.detach('s', 'a')).toBe(true);
    });
  });

  // ------------------------------------------------------------------ heartbeats

  describe('heartbeat()', () => {
    it('resolves false for a node the store does not know', async () => {
      expect(await store.heartbeat('nobody', snapshot(0, []), TTL, NOW)).toBe(false);
      expect(await store.getNode('nobody', NOW)).toBeUndefined();
    });

    it('extends liveness and takes the viewer counts and stats as reported', async () => {
      await originWithStream(0, 2);
      await addNode(store, 'r1', { maxViewers: 50 });
      await place('s', 2);
      expect(await store.heartbeat('r1', snapshot(9, [carried('s', 'o', 1, 7)]), TTL, NOW + 3000)).toBe(true);
      const view = await store.getNode('r1', NOW + 3000);
      expect(view).toMatchObject({ expiresAt: NOW + 3000 + TTL, load: { viewers: 9 }, stats: { viewers: 9, cpu: 0.1 } });
      expect((await tree('s')).get('r1')).toMatchObject({ viewers: 7, bitrateOutKbps: 1500, parent: 'o', depth: 1 });
      expect(await store.expiredNodes(NOW + TTL + 1)).not.toContain('r1');
    });

    it('keeps placed viewers that have not arrived yet until the reconcile grace has passed', async () => {
      await originWithStream(0, 2);
      await addNode(store, 'r1', { maxViewers: 3 });
      for (let i = 0; i < 3; i++) expect((await place('s', 2)).nodeId).toBe('r1');
      // The node has seen only one of the three so far: the other two are still connecting.
      await store.heartbeat('r1', snapshot(1, [carried('s', 'o', 1, 1)]), TTL, NOW + 100);
      expect((await store.getNode('r1', NOW + 100))?.load.viewers).toBe(3);
      expect((await tree('s')).get('r1')?.viewers).toBe(3);
      expect(await rejectionCode(place('s', 2, [], NOW + 200))).toBe('CASCADE_ERR_NODE_CAPACITY');
      // Still one after the grace: the other two never came; the count follows the node.
      await store.heartbeat('r1', snapshot(1, [carried('s', 'o', 1, 1)]), TTL, NOW + 100 + RECONCILE_GRACE_MS);
      expect((await store.getNode('r1', NOW + 100 + RECONCILE_GRACE_MS))?.load.viewers).toBe(1);
      expect((await tree('s')).get('r1')?.viewers).toBe(1);
      // A report above the count is taken at once.
      await store.heartbeat('r1', snapshot(2, [carried('s', 'o', 1, 2)]), TTL, NOW + 100 + RECONCILE_GRACE_MS + 1);
      expect((await store.getNode('r1', NOW + 100 + RECONCILE_GRACE_MS + 1))?.load.viewers).toBe(2);
    });

    it('a report that catches up with the count clears the grace timer', async () => {
      await originWithStream(0, 2);
      await addNode(store, 'r1', { maxViewers: 5 });
      for (let i = 0; i < 2; i++) await place('s', 2);
      await store.heartbeat('r1', snapshot(1, [carried('s', 'o', 1, 1)]), TTL, NOW);
      await store.heartbeat('r1', snapshot(2, [carried('s', 'o', 1, 2)]), TTL, NOW + 1000);
      await place('s', 2, [], NOW + 1500);
      // Below again, late: a fresh grace period starts rather than the old one expiring.
      await store.heartbeat('r1', snapshot(2, [carried('s', 'o', 1, 2)]), TTL, NOW + RECONCILE_GRACE_MS + 1);
      expect((await store.getNode('r1', NOW + RECONCILE_GRACE_MS + 1))?.load.viewers).toBe(3);
    });

    it('does not change the structure the store knows', async () => {
      await originWithStream(0, 2);
      await addNode(store, 'a', { maxViewers: 1 });
      await addNode(store, 'b', { maxViewers: 1 });
      await place('s', 2);
      await place('s', 2);
      // b claims to hang under a at depth 5: the controller's tree says o, depth 1.
      await store.heartbeat('b', snapshot(1, [carried('s', 'a', 5, 1)]), TTL, NOW);
      const t = await tree('s');
      expect(t.get('b')).toMatchObject({ parent: 'o', depth: 1 });
      expect(t.get('a')?.children).toBe(0);
    });

    it.each([
      ['children first', ['c', 'a', 'o'], 2],
      ['parents first', ['o', 'a', 'c'], 1],
    ])('rebuilds the tree entries the store lost from what both ends of each edge report (%s)', async (_order, order, rounds) => {
      await originWithStream(0, 2);
      for (const id of ['a', 'c']) await addNode(store, id, { maxViewers: 5 });
      await place('s', 1); // a under o
      // Redis restarts: everything is gone; the origin server puts its stream back, nodes re-register.
      store = await factory.lost(store);
      await originWithStream(0, 2);
      for (const id of ['a', 'c']) await addNode(store, id, { maxViewers: 5 });
      const reports = {
        o: snapshot(0, [carried('s', null, 0, 0, ['a'])]),
        a: snapshot(3, [carried('s', 'o', 1, 3, ['c'])]),
        c: snapshot(2, [carried('s', 'a', 2, 2)]),
      } as const;
      // An edge comes back once its child reports pulling from a parent in the tree and that
      // parent reports feeding it: with children first, one level per round of heartbeats.
      for (let r = 0; r < rounds; r++) {
        for (const id of order as ('o' | 'a' | 'c')[]) expect(await store.heartbeat(id, reports[id], TTL, NOW + 100)).toBe(true);
      }
      const t = await tree('s');
      expect(t.get('a')).toMatchObject({ parent: 'o', depth: 1, children: 1, since: NOW + 100 });
      expect(t.get('c')).toMatchObject({ parent: 'a', depth: 2, children: 0 });
      expect(t.get('o')?.children).toBe(1);
      expect(await store.nodeStreams('c')).toEqual(['s']);
      // A node's own heartbeat counts its viewers once it is in the tree.
      for (const id of ['a', 'c'] as const) await store.heartbeat(id, reports[id], TTL, NOW + 200);
      expect((await tree('s')).get('a')?.viewers).toBe(3);
      expect((await tree('s')).get('c')?.viewers).toBe(2);
      expect((await store.getNode('a', NOW))?.load).toEqual({ viewers: 3, children: 1 });
      // The rebuilt tree is used: a (viewers 3 of 5) serves the next viewer.
      expect(await place('s', 2, [], NOW + 200)).toMatchObject({ nodeId: 'a' });
    });

    it('never lets a node put itself into a tree: a relay claiming a stream it was not given draws no viewers', async () => {
      await originWithStream(1, 2);
      await addNode(store, 'honest', { maxViewers: 5 });
      await addNode(store, 'hostile', { maxViewers: 100 });
      await place('s', 2); // the origin
      await place('s', 2); // honest, under o
      // hostile claims to carry s under the origin (and to feed a child), at depth 0.
      await store.heartbeat('hostile', snapshot(50, [carried('s', 'o', 0, 50, ['honest'])]), TTL, NOW + 100);
      await store.heartbeat('hostile', snapshot(50, [carried('s', 'o', 0, 50, ['honest'])]), TTL, NOW + 7000);
      const t = await tree('s');
      expect(t.has('hostile')).toBe(false);
      expect(t.get('o')?.children).toBe(1);
      expect(t.get('honest')).toMatchObject({ parent: 'o', depth: 1 });
      expect(await store.nodeStreams('hostile')).toEqual([]);
      for (let i = 0; i < 4; i++) expect((await place('s', 2, [], NOW + 7000)).nodeId).toBe('honest');
    });

    it('a parent cannot vouch for a relay already in the tree elsewhere, nor for itself or an unknown node', async () => {
      await originWithStream(0, 2);
      for (const id of ['a', 'b']) await addNode(store, id, { maxViewers: 1 });
      await place('s', 2);
      await place('s', 2); // a and b both under o
      await store.heartbeat('a', snapshot(1, [carried('s', 'o', 1, 1, ['b', 'a', 'nobody'])]), TTL, NOW + 100);
      const t = await tree('s');
      expect(t.get('b')).toMatchObject({ parent: 'o', depth: 1 });
      expect(t.get('a')).toMatchObject({ parent: 'o', children: 0 });
      expect(t.has('nobody')).toBe(false);
    });

    it('a node in a tree cannot pull idle relays into its subtree by listing them as its children', async () => {
      await originWithStream(0, 8);
      await addNode(store, 'hostile', { volunteer: true, maxViewers: 1, maxChildren: 8 });
      await place('s', 2); // hostile under o: the controller's decision
      for (const id of ['idle1', 'idle2']) await addNode(store, id, { maxViewers: 10 });
      // The idle relays carry nothing and say so, before and after hostile's claims.
      for (const at of [NOW + 100, NOW + 200]) {
        for (const id of ['idle1', 'idle2']) await store.heartbeat(id, snapshot(0, []), TTL, at);
        await store.heartbeat('hostile', snapshot(1, [carried('s', 'o', 1, 1, ['idle1', 'idle2'])]), TTL, at);
      }
      const t = await tree('s');
      expect([...t.keys()].sort()).toEqual(['hostile', 'o']);
      expect(t.get('hostile')?.children).toBe(0);
      expect((await store.getNode('hostile', NOW + 200))?.load.children).toBe(0);
      expect(await store.nodeStreams('idle1')).toEqual([]);
      // The next viewer goes to a relay the store attaches itself (an assignment the controller sends).
      expect(await place('s', 2, [], NOW + 200)).toMatchObject({ nodeId: 'idle1', attached: { nodeId: 'idle1', parentId: 'o', depth: 1 } });
    });

    it('restores an edge only when both ends report it, within K and the parent’s own capacity', async () => {
      await store.close();
      store = await factory.create({ maxChildren: 2 });
      await originWithStream(0, 8);
      await addNode(store, 'p', { maxViewers: 1, maxChildren: 3 });
      await addNode(store, 'q', { maxViewers: 1, maxChildren: 1 });
      await place('s', 2);
      await place('s', 2); // p and q under o
      // Relays the store does not have in the tree (lost), each reporting s from its parent.
      const kids = { p: ['p1', 'p2', 'p3'], q: ['q1', 'q2'] } as const;
      for (const [parent, ids] of Object.entries(kids)) {
        for (const id of ids) {
          await addNode(store, id, { maxViewers: 5 });
          await store.heartbeat(id, snapshot(1, [carried('s', parent, 2, 1)]), TTL, NOW + 100);
        }
        await store.heartbeat(parent, snapshot(1, [carried('s', 'o', 1, 1, [...ids])]), TTL, NOW + 100);
      }
      const t = await tree('s');
      // p: K = 2 of its three; q: its own capacity of one.
      expect([...t.values()].filter((e) => e.parent === 'p').map((e) => e.nodeId).sort()).toEqual(['p1', 'p2']);
      expect([...t.values()].filter((e) => e.parent === 'q').map((e) => e.nodeId)).toEqual(['q1']);
      expect([t.get('p')?.children, t.get('q')?.children]).toEqual([2, 1]);
      expect((await store.getNode('p', NOW + 100))?.load.children).toBe(2);
      expect(t.get('p1')).toMatchObject({ depth: 2, children: 0, since: NOW + 100 });
      expect(await store.nodeStreams('p3')).toEqual([]);
    });

    it('a restored relay takes back the children still hanging under it, and never closes a loop', async () => {
      await originWithStream(0, 1);
      await addNode(store, 'a', { maxViewers: 1 });
      await addNode(store, 'b', { maxViewers: 1 });
      await place('s', 1); // a under o
      await place('s', 1); // b under a
      // a is removed (its liveness ran out) while its pipes still flow; b is an orphan below it.
      await store.removeNode('a');
      await addNode(store, 'a', { maxViewers: 1 });
      // a claims to be fed by b, and b to feed a: that would make a loop.
      await store.heartbeat('a', snapshot(0, [carried('s', 'b', 2, 0)]), TTL, NOW + 100);
      await store.heartbeat('b', snapshot(1, [carried('s', 'a', 2, 1, ['a'])]), TTL, NOW + 100);
      expect((await tree('s')).has('a')).toBe(false);
      // What both really report: a fed by o, b by a.
      await store.heartbeat('a', snapshot(0, [carried('s', 'o', 1, 0, ['b'])]), TTL, NOW + 200);
      await store.heartbeat('o', snapshot(0, [carried('s', null, 0, 0, ['a'])]), TTL, NOW + 200);
      const t = await tree('s');
      expect(t.get('a')).toMatchObject({ parent: 'o', depth: 1, children: 1 });
      expect(t.get('b')).toMatchObject({ parent: 'a', depth: 2 });
      expect(t.get('o')?.children).toBe(1);
      expect((await store.getNode('a', NOW + 200))?.load.children).toBe(1);
    });

    it('ignores reported streams the store does not know', async () => {
      await addNode(store, 'r1');
      expect(await store.heartbeat('r1', snapshot(1, [carried('ghost', 'o', 1, 1)]), TTL, NOW)).toBe(true);
      expect(await store.getTree('ghost')).toEqual([]);
      expect(await store.nodeStreams('r1')).toEqual([]);
    });

    it('drops a leaf entry its node stopped reporting, once the grace period has passed', async () => {
      await originWithStream(0, 2);
      await addNode(store, 'a', { maxViewers: 5 });
      await place('s', 2);
      // Reported nothing, but just attached: the assignment may not have reached it yet.
      await store.heartbeat('a', snapshot(0, []), TTL, NOW + 1000);
      expect((await tree('s')).has('a')).toBe(true);
      await store.heartbeat('a', snapshot(0, []), TTL, NOW + 6000);
      expect((await tree('s')).has('a')).toBe(false);
      expect((await tree('s')).get('o')?.children).toBe(0);
      expect(await store.nodeStreams('a')).toEqual([]);
    });
  });

  // ------------------------------------------------------------------ events and keys

  describe('publish() and subscribe()', () => {
    it('deliver every event to each subscriber until it unsubscribes', async () => {
      const a = collector();
      const b = collector();
      const unsubscribeA = store.subscribe(a.handler);
      store.subscribe(b.handler);
      const first: TopologyEvent = { type: 'nodegone', nodeId: 'r0' };
      const second: TopologyEvent = { type: 'nodegone', nodeId: 'r1' };
      await store.publish(first);
      // Subscribers of one store see an event together, so a has it once b has.
      await b.until(1);
      unsubscribeA();
      await store.publish(second);
      await b.until(2);
      expect(b.events).toEqual([first, second]);
      expect(a.events).toEqual([first]);
    });

    it('delivers nothing synchronously inside publish()', async () => {
      const seen: TopologyEvent[] = [];
      store.subscribe((e) => seen.push(e));
      const p = store.publish({ type: 'nodegone', nodeId: 'x' });
      expect(seen).toEqual([]);
      await p;
    });
  });

  describe('getOrCreateTicketKey()', () => {
    it('returns the first key generated, every time', async () => {
      let n = 0;
      const generate = () => ({ privateKey: `private-${++n}`, publicKey: `public-${n}` });
      const first = await store.getOrCreateTicketKey(generate);
      const second = await store.getOrCreateTicketKey(generate);
      expect(first).toEqual({ privateKey: 'private-1', publicKey: 'public-1' });
      expect(second).toEqual(first);
    });

    it('returns one key to concurrent callers', async () => {
      let n = 0;
      const generate = () => ({ privateKey: `private-${++n}`, publicKey: `public-${n}` });
      const keys = await Promise.all(Array.from({ length: 5 }, () => store.getOrCreateTicketKey(generate)));
      for (const k of keys) expect(k).toEqual(keys[0]);
      expect(keys[0]!.publicKey).toBe(keys[0]!.privateKey.replace('private', 'public'));
    });
  });

  describe('close()', () => {
    it('makes every later call reject with CASCADE_ERR_STORE_UNAVAILABLE', async () => {
      await store.close();
      await store.close();
      expect(await rejectionCode(store.getNode('x', NOW))).toBe('CASCADE_ERR_STORE_UNAVAILABLE');
      expect(await rejectionCode(store.placeViewer('s', policy(2), []))).toBe('CASCADE_ERR_STORE_UNAVAILABLE');
    });
  });
});
