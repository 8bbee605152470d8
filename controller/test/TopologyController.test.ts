import { setTimeout as delay } from 'node:timers/promises';
import jwt from 'jsonwebtoken';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger, type PipeTicketClaims, type ViewerTicketClaims } from '@cascade/protocol';
import { MemoryTopologyStore } from '../src/store/MemoryTopologyStore.js';
import { TokenService } from '../src/auth/TokenService.js';
import { TopologyController, type AssignEvent } from '../src/TopologyController.js';
import type { TopologyStore } from '../src/store/TopologyStore.js';
import type { NodeRecord, NodeSnapshot, NodeStatus, TopologyEvent } from '../src/types.js';

const SECRET = 'unit-test-secret-0123456789';
const clock = { t: 1_000_000, now() { return this.t; } };

function record(id: string, kind: 'origin' | 'relay' = 'relay', o: Partial<NodeRecord['capacity']> & { volunteer?: boolean } = {}): NodeRecord {
  return {
    id,
    kind,
    volunteer: o.volunteer ?? false,
    owner: id,
    url: `http://${id}.test:8080`,
    mediaIp: `10.0.0.${id.length}`,
    capacity: { maxViewers: o.maxViewers ?? 2, maxChildren: o.maxChildren ?? 2, upKbps: o.upKbps ?? 10_000, downKbps: 10_000 },
    registeredAt: clock.t,
  };
}

function snap(viewers: number, o: Partial<NodeSnapshot['stats']> = {}): NodeSnapshot {
  return { stats: { viewers, children: 0, bitrateInKbps: 0, bitrateOutKbps: 0, lossRate: 0, cpu: 0.1, bytesOut: 0, ...o }, streams: [] };
}

/**
 * A MemoryTopologyStore that can lose everything at once, as Redis does when it restarts
 * without persistence. Subscriptions survive the wipe (the Redis store resubscribes).
 */
function wipeableStore(): { store: TopologyStore; wipe(): void } {
  const handlers = new Set<(e: TopologyEvent) => void>();
  const fresh = () => {
    const s = new MemoryTopologyStore();
    s.subscribe((e) => handlers.forEach((h) => h(e)));
    return s;
  };
  let current = fresh();
  const store = new Proxy({} as TopologyStore, {
    get(_target, prop) {
      if (prop === 'subscribe') {
        return (h: (e: TopologyEvent) => void) => {
          handlers.add(h);
          return () => handlers.delete(h);
        };
      }
      const v = Reflect.get(current, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(current) : v;
    },
  });
  return { store, wipe: () => (current = fresh()) };
}

async function setup(options: { watchTokenRequired?: boolean; originBudget?: number; store?: TopologyStore } = {}) {
  clock.t = 1_000_000;
  const store = options.store ?? new MemoryTopologyStore();
  const tokens = new TokenService(SECRET);
  const controller = await TopologyController.create(
    {
      maxChildren: 2,
      heartbeatIntervalMs: 1000,
      nodeTtlMs: 3000,
      demoteCpu: 0.9,
      demoteLossRate: 0.1,
      viewerKbps: 1700,
      ticketTtlSec: 60,
      watchTokenRequired: options.watchTokenRequired ?? false,
      endedRetentionMs: 60_000,
    },
    { store, logger: silentLogger, tokens, clock },
  );
  const assigns: AssignEvent[] = [];
  controller.on('assign', (e) => assigns.push(e));
  await controller.registerNode(record('origin', 'origin', { maxViewers: options.originBudget ?? 1, maxChildren: 2 }), 'ready');
  await controller.putStream({ id: 'stream1', title: 'T', state: 'live', createdAt: clock.t, updatedAt: clock.t, originNodeId: 'origin', owner: 'alice' });
  const flush = () => delay(0);
  return { store, tokens, controller, assigns, flush };
}

describe('TopologyController', () => {
  beforeEach(() => vi.useRealTimers());

  it('placeViewer() answers with the node and a ticket that node can verify', async () => {
    const { controller } = await setup();
    const { placement, stream } = await controller.placeViewer({ streamId: 'stream1' });
    expect(placement).toMatchObject({ nodeId: 'origin' });
    expect(placement).not.toHaveProperty('url');
    expect(stream).toEqual({ id: 'stream1', title: 'T', state: 'live', createdAt: clock.t });
    // Signed with the controller's private key, verifiable with the public key alone.
    const claims = jwt.verify(placement.ticket, controller.tickets.publicKey, { algorithms: ['ES256'] }) as ViewerTicketClaims;
    expect(claims).toMatchObject<Partial<ViewerTicketClaims>>({ kind: 'viewer', node: 'origin', stream: 'stream1' });
    expect(() => jwt.verify(placement.ticket, SECRET, { algorithms: ['HS256'] })).toThrow();
  });

  it('attaching a relay publishes an assignment with a pipe ticket naming the probed address', async () => {
    const { controller, assigns, flush } = await setup();
    await controller.registerNode(record('relayA'), 'ready');
    await controller.placeViewer({ streamId: 'stream1' }); // origin budget
    const { placement } = await controller.placeViewer({ streamId: 'stream1' });
    expect(placement.nodeId).toBe('relayA');
    await flush();
    expect(assigns).toHaveLength(1);
    expect(assigns[0]).toMatchObject({ nodeId: 'relayA', parent: { nodeId: 'origin' }, stream: { id: 'stream1' } });
    const claims = jwt.decode(assigns[0]!.ticket) as PipeTicketClaims;
    expect(claims).toMatchObject({ kind: 'pipe', node: 'origin', child: 'relayA', stream: 'stream1', childIp: '10.0.0.6' });
  });

  it('requires a watch token when configured, scoped to the stream', async () => {
    const { controller, tokens } = await setup({ watchTokenRequired: true });
    await expect(controller.placeViewer({ streamId: 'stream1' })).rejects.toMatchObject({ code: 'CASCADE_ERR_AUTH_MISSING_TOKEN' });
    const other = tokens.issue({ scope: ['watch'], sub: 'v', stream: 'stream2' }, 60);
    await expect(controller.placeViewer({ streamId: 'stream1', token: other })).rejects.toMatchObject({ code: 'CASCADE_ERR_AUTH_FORBIDDEN' });
    const ok = tokens.issue({ scope: ['watch'], sub: 'v', stream: 'stream1' }, 60);
    await expect(controller.placeViewer({ streamId: 'stream1', token: ok })).resolves.toBeDefined();
  });

  it('refuses impossible heartbeat figures with RELAY_INVALID_STATS', async () => {
    const { controller } = await setup();
    const r = record('relayA', 'relay', { maxViewers: 10 });
    await controller.registerNode(r, 'ready');
    await expect(controller.nodeHeartbeat(r, 'ready', snap(100))).rejects.toMatchObject({ code: 'CASCADE_ERR_RELAY_INVALID_STATS' });
    await expect(controller.nodeHeartbeat(r, 'ready', snap(1, { bitrateOutKbps: 1e6 }))).rejects.toMatchObject({ code: 'CASCADE_ERR_RELAY_INVALID_STATS' });
    await expect(controller.nodeHeartbeat(r, 'ready', snap(3))).resolves.toEqual({});
  });

  it('viewersLeft() takes a relay\'s batch of departures in one request, with no more store writes than the relay may serve', async () => {
    const { controller, store } = await setup({ originBudget: 0 });
    const r = record('rA', 'relay', { maxViewers: 4 });
    await controller.registerNode(r, 'ready');
    for (let i = 0; i < 4; i++) await controller.placeViewer({ streamId: 'stream1' });
    const viewers = async () => (await store.getTree('stream1')).find((e) => e.nodeId === 'rA')?.viewers;
    expect(await viewers()).toBe(4);
    const release = vi.spyOn(store, 'releaseViewer');
    await controller.viewersLeft(r, 'stream1', 3);
    expect(release).toHaveBeenCalledTimes(3);
    expect(await viewers()).toBe(1);
    // A larger batch (e.g. collected while the controller was away) cannot cost more than the relay can hold.
    release.mockClear();
    await controller.viewersLeft(r, 'stream1', 100);
    expect(release).toHaveBeenCalledTimes(4);
    expect(await viewers()).toBe(0);
  });

  it('a node that is gone has its child relays re-parented (an assignment each)', async () => {
    const { controller, assigns, flush, store } = await setup({ originBudget: 0 });
    for (const id of ['rA', 'rB', 'rC']) await controller.registerNode(record(id, 'relay', { maxViewers: 1 }), 'ready');
    for (let i = 0; i < 3; i++) await controller.placeViewer({ streamId: 'stream1' });
    await flush();
    const tree = await store.getTree('stream1');
    const deep = tree.find((e) => e.depth === 2)!;
    assigns.length = 0;
    await controller.nodeGone(deep.parent!, 'test');
    await flush();
    expect(assigns.map((a) => a.nodeId)).toEqual([deep.nodeId]);
    expect(assigns[0]!.parent.nodeId).not.toBe(deep.parent);
  });

  it('heartbeats that stop expire the node at the next sweep', async () => {
    const { controller, store } = await setup();
    await controller.registerNode(record('rA'), 'ready');
    const gone = vi.fn();
    controller.observer.on('nodegone', gone);
    await controller.placeViewer({ streamId: 'stream1' });
    await controller.placeViewer({ streamId: 'stream1' }); // attaches rA
    clock.t += 2000;
    await controller.nodeHeartbeat(record('origin', 'origin', { maxViewers: 1 }), 'ready', snap(1));
    clock.t += 1500; // rA silent for 3.5 s > nodeTtlMs
    await controller.sweep();
    expect(gone).toHaveBeenCalledWith('rA');
    expect(await store.getNode('rA', clock.t)).toBeUndefined();
  });

  it('a store that was away (heartbeats not written) gets a full TTL back before any node is declared gone', async () => {
    const { store: inner } = { store: new MemoryTopologyStore() };
    let down = false;
    const store = new Proxy(inner, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (down && prop !== 'subscribe' && prop !== 'close') return Promise.reject(new Error('redis down'));
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as TopologyStore;
    const { controller } = await setup({ store });
    await controller.registerNode(record('rA'), 'ready');
    await controller.registerNode(record('rB'), 'ready');
    const gone = vi.fn();
    controller.observer.on('nodegone', gone);
    clock.t += 4000; // past the first TTL after start: verdicts are allowed
    await controller.nodeHeartbeat(record('origin', 'origin', { maxViewers: 1 }), 'ready', snap(1));
    await controller.nodeHeartbeat(record('rA'), 'ready', snap(0));
    await controller.nodeHeartbeat(record('rB'), 'ready', snap(0));
    down = true;
    clock.t += 10_000; // the store is away for longer than a TTL: nothing is written
    await controller.sweep();
    down = false;
    await controller.sweep(); // back: every node's last heartbeat looks 10 s old
    expect(gone).not.toHaveBeenCalled();
    clock.t += 1000;
    await controller.nodeHeartbeat(record('origin', 'origin', { maxViewers: 1 }), 'ready', snap(1));
    await controller.nodeHeartbeat(record('rA'), 'ready', snap(0)); // rA is alive; rB is not
    clock.t += 1900;
    await controller.sweep();
    expect(gone).not.toHaveBeenCalled();
    expect(await store.getNode('rB', clock.t)).toBeDefined();
    await controller.nodeHeartbeat(record('origin', 'origin', { maxViewers: 1 }), 'ready', snap(1));
    await controller.nodeHeartbeat(record('rA'), 'ready', snap(0));
    clock.t += 200; // a full TTL since the store came back: rB, silent all along, is judged; the others are not
    await controller.sweep();
    expect(await store.getNode('rB', clock.t)).toBeUndefined();
    expect(await store.getNode('rA', clock.t)).toBeDefined();
    expect(await store.getNode('origin', clock.t)).toBeDefined();
    expect(gone).not.toHaveBeenCalled(); // (nodegone is observed only for nodes that carried something)
  });

  it.each([
    { path: 'packet loss over demoteLossRate', unhealthy: { lossRate: 0.5 } },
    { path: 'CPU over demoteCpu', unhealthy: { cpu: 0.95 } },
    { path: 'an upload over 90 % of its declared uplink', unhealthy: { bitrateOutKbps: 9500 } },
  ])('a relay with $path for three heartbeats is demoted and its child relay moved to another parent; five healthy ones restore it', async ({ unhealthy }) => {
    const { controller, store, assigns, flush } = await setup({ originBudget: 0 });
    for (const id of ['rA', 'rB', 'rC']) await controller.registerNode(record(id, 'relay', { maxViewers: 1 }), 'ready');
    // Origin K = 2 is full after rA and rB; the third viewer's relay hangs below one of them.
    for (let i = 0; i < 3; i++) await controller.placeViewer({ streamId: 'stream1' });
    await flush();
    const child = (await store.getTree('stream1')).find((e) => e.depth === 2)!;
    expect(child, 'a relay fed by another relay').toBeDefined();
    const demoted = record(child.parent!, 'relay', { maxViewers: 1 });
    const other = ['rA', 'rB'].find((id) => id !== demoted.id)!;
    // What the lossy or overloaded parent honestly reports: one viewer, feeding the child.
    const report = (o: Partial<NodeSnapshot['stats']>): NodeSnapshot => ({
      ...snap(1, { children: 1, ...o }),
      streams: [{ streamId: 'stream1', parentNodeId: 'origin', depth: 1, viewers: 1, children: 1, childNodeIds: [child.nodeId], bitrateOutKbps: 500 }],
    });
    const reparented = vi.fn();
    controller.observer.on('reparent', reparented);
    assigns.length = 0;

    for (let i = 0; i < 2; i++) await controller.nodeHeartbeat(demoted, 'ready', report(unhealthy));
    await flush();
    expect((await store.getNode(demoted.id, clock.t))?.status).toBe('ready');
    expect((await store.getTree('stream1')).find((e) => e.nodeId === child.nodeId)?.parent).toBe(demoted.id);
    expect(assigns).toHaveLength(0);

    await controller.nodeHeartbeat(demoted, 'ready', report(unhealthy));
    await flush();
    expect((await store.getNode(demoted.id, clock.t))?.status).toBe('demoted');
    const moved = (await store.getTree('stream1')).find((e) => e.nodeId === child.nodeId)!;
    expect(moved.parent).toBe(other);
    expect(moved.depth).toBe(2);
    expect(reparented).toHaveBeenCalledTimes(1);
    expect(reparented).toHaveBeenCalledWith('stream1', child.nodeId, other);
    // The child is told to pull from its new parent, with a ticket for that parent.
    expect(assigns).toHaveLength(1);
    expect(assigns[0]).toMatchObject({ nodeId: child.nodeId, parent: { nodeId: other } });
    expect(jwt.decode(assigns[0]!.ticket)).toMatchObject({ kind: 'pipe', node: other, child: child.nodeId });

    const healthy = (): NodeSnapshot => ({ ...report({}), streams: [{ ...report({}).streams[0]!, children: 0, childNodeIds: [] }] });
    for (let i = 0; i < 4; i++) await controller.nodeHeartbeat(demoted, 'demoted', healthy());
    expect((await store.getNode(demoted.id, clock.t))?.status).toBe('demoted');
    await controller.nodeHeartbeat(demoted, 'demoted', healthy());
    expect((await store.getNode(demoted.id, clock.t))?.status).toBe('ready');
  });

  it('loss that arrives from upstream is not held against a relay, only the loss it adds', async () => {
    const { controller, store, flush } = await setup({ originBudget: 0 });
    for (const id of ['rA', 'rB', 'rC']) await controller.registerNode(record(id, 'relay', { maxViewers: 1 }), 'ready');
    for (let i = 0; i < 3; i++) await controller.placeViewer({ streamId: 'stream1' });
    await flush();
    const child = (await store.getTree('stream1')).find((e) => e.depth === 2)!;
    const parent = record(child.parent!, 'relay', { maxViewers: 1 });
    const kid = record(child.nodeId, 'relay', { maxViewers: 1 });
    const carrying = (from: string, depth: number, lossRate: number): NodeSnapshot => ({
      ...snap(1, { lossRate }),
      streams: [{ streamId: 'stream1', parentNodeId: from, depth, viewers: 1, children: 0, bitrateOutKbps: 500 }],
    });
    const status = async (id: string) => (await store.getNode(id, clock.t))?.status;
    // The broadcaster's uplink loses 30 %: the origin measures it, and so does everything below it.
    await controller.nodeHeartbeat(record('origin', 'origin', { maxViewers: 0, maxChildren: 2 }), 'ready', snap(0, { lossRate: 0.3 }));
    for (let i = 0; i < 4; i++) {
      await controller.nodeHeartbeat(parent, 'ready', carrying('origin', 1, 0.32));
      await controller.nodeHeartbeat(kid, 'ready', carrying(parent.id, 2, 0.34));
    }
    expect(await status(parent.id)).toBe('ready');
    expect(await status(kid.id)).toBe('ready');
    // The child's own link adds 20 % on top: that one is the child's.
    for (let i = 0; i < 3; i++) {
      await controller.nodeHeartbeat(parent, 'ready', carrying('origin', 1, 0.32));
      await controller.nodeHeartbeat(kid, 'ready', carrying(parent.id, 2, 0.55));
    }
    expect(await status(parent.id)).toBe('ready');
    expect(await status(kid.id)).toBe('demoted');
  });

  it('a relay gone silent is suspected: no new viewers, its child moved; once it answers, healthy heartbeats restore it', async () => {
    const { controller, store, flush } = await setup({ originBudget: 0 });
    for (const id of ['rA', 'rB', 'rC']) await controller.registerNode(record(id, 'relay', { maxViewers: 1 }), 'ready');
    for (let i = 0; i < 3; i++) await controller.placeViewer({ streamId: 'stream1' });
    await flush();
    const child = (await store.getTree('stream1')).find((e) => e.depth === 2)!;
    const silent = record(child.parent!, 'relay', { maxViewers: 1 });
    // A relay whose heartbeats are healthy all along, so only the suspicion can restore it.
    const healthy = (): NodeSnapshot => ({ ...snap(1), streams: [{ streamId: 'stream1', parentNodeId: 'origin', depth: 1, viewers: 1, children: 0, childNodeIds: [], bitrateOutKbps: 500 }] });
    for (let i = 0; i < 7; i++) await controller.nodeHeartbeat(silent, 'ready', healthy());

    await controller.suspectNode(silent.id);
    await flush();
    expect((await store.getNode(silent.id, clock.t))?.status).toBe('demoted');
    expect((await store.getTree('stream1')).find((e) => e.nodeId === child.nodeId)?.parent).not.toBe(silent.id);
    // Suspecting twice, or a relay that is not ready, changes nothing.
    await controller.suspectNode(silent.id);
    expect((await store.getNode(silent.id, clock.t))?.status).toBe('demoted');

    for (let i = 0; i < 4; i++) await controller.nodeHeartbeat(silent, 'ready', healthy());
    expect((await store.getNode(silent.id, clock.t))?.status).toBe('demoted');
    // The store fails the restoring write once (a Redis blip): the next five healthy heartbeats try again.
    vi.spyOn(store, 'setNodeStatus').mockRejectedValueOnce(new Error('store blip'));
    await expect(controller.nodeHeartbeat(silent, 'ready', healthy())).rejects.toThrow('store blip');
    expect((await store.getNode(silent.id, clock.t))?.status).toBe('demoted');
    for (let i = 0; i < 4; i++) await controller.nodeHeartbeat(silent, 'ready', healthy());
    expect((await store.getNode(silent.id, clock.t))?.status).toBe('demoted');
    await controller.nodeHeartbeat(silent, 'ready', healthy());
    expect((await store.getNode(silent.id, clock.t))?.status).toBe('ready');
  });

  it('relayCapacity() takes no more copies than the declared upload carries', async () => {
    const { controller } = await setup();
    // 1700 kbit/s a copy: 8500 carries 5, children first.
    expect(controller.relayCapacity({ maxViewers: 20, maxChildren: 2, upKbps: 8500, downKbps: 0 })).toMatchObject({ maxViewers: 3, maxChildren: 2 });
    expect(controller.relayCapacity({ maxViewers: 2, maxChildren: 2, upKbps: 100_000, downKbps: 0 })).toMatchObject({ maxViewers: 2, maxChildren: 2 });
    expect(controller.relayCapacity({ maxViewers: 20, maxChildren: 3, upKbps: 2000, downKbps: 0 })).toMatchObject({ maxViewers: 0, maxChildren: 1 });
    // Nothing declared: the declared limits stand.
    expect(controller.relayCapacity({ maxViewers: 20, maxChildren: 3, upKbps: 0, downKbps: 0 })).toMatchObject({ maxViewers: 20, maxChildren: 3 });
  });

  it('drainNode() stops new placements on the node', async () => {
    const { controller } = await setup({ originBudget: 0 });
    await controller.registerNode(record('rA', 'relay', { maxViewers: 5 }), 'ready');
    await controller.registerNode(record('rB', 'relay', { maxViewers: 5 }), 'ready');
    const first = (await controller.placeViewer({ streamId: 'stream1' })).placement.nodeId;
    await controller.drainNode(first);
    const second = (await controller.placeViewer({ streamId: 'stream1' })).placement.nodeId;
    expect(second).not.toBe(first);
  });

  describe('after the store lost everything (Redis restarted empty)', () => {
    const unhealthy = (): NodeSnapshot => snap(0, { cpu: 0.95 });
    it.each<{ status: NodeStatus; how: string; make: (c: TopologyController, r: NodeRecord) => Promise<void> }>([
      { status: 'demoted', how: 'suspected (silent)', make: (c, r) => c.suspectNode(r.id) },
      { status: 'demoted', how: 'unhealthy for three heartbeats', make: async (c, r) => { for (let i = 0; i < 3; i++) await c.nodeHeartbeat(r, 'ready', unhealthy()); } },
      { status: 'draining', how: 'draining', make: (c, r) => c.drainNode(r.id) },
    ])('a relay $how is re-created $status, not with the stale status its connection holds', async ({ status, make }) => {
      const { store, wipe } = wipeableStore();
      const { controller } = await setup({ originBudget: 0, store });
      const r = record('rA', 'relay', { maxViewers: 5 });
      await controller.registerNode(r, 'ready');
      await controller.nodeHeartbeat(r, 'ready', snap(0));
      await make(controller, r);
      expect((await store.getNode(r.id, clock.t))?.status).toBe(status);

      wipe();
      expect(await store.getNode(r.id, clock.t)).toBeUndefined();
      // The gateway last saw the relay answer its probe: 'ready' is what its connection believes.
      await controller.nodeHeartbeat(r, 'ready', snap(0));
      expect((await store.getNode(r.id, clock.t))?.status).toBe(status);
      // So it gets no new traffic: with the origin at budget 0 nobody can take the viewer.
      await controller.registerNode(record('origin', 'origin', { maxViewers: 0, maxChildren: 2 }), 'ready');
      await controller.putStream({ id: 'stream1', title: 'T', state: 'live', createdAt: clock.t, updatedAt: clock.t, originNodeId: 'origin', owner: 'alice' });
      await expect(controller.placeViewer({ streamId: 'stream1' })).rejects.toMatchObject({ code: 'CASCADE_ERR_NODE_CAPACITY' });
    });

    it('an edge comes back only with the pipe ticket this controller signed for it: two relays alone cannot make one up', async () => {
      const { store, wipe } = wipeableStore();
      const { controller, assigns } = await setup({ originBudget: 0, store });
      const a = record('rA', 'relay', { maxViewers: 1, maxChildren: 2 });
      const b = record('rB', 'relay', { maxViewers: 1, maxChildren: 2 });
      const m = record('rM', 'relay', { maxViewers: 1, maxChildren: 2 });
      for (const r of [a, b, m]) await controller.registerNode(r, 'ready');
      // A real edge: the controller attaches rA under the origin (its assignment carries the ticket).
      await controller.placeViewer({ streamId: 'stream1' });
      const placed = assigns.at(-1)!;
      const ticket = placed.ticket;
      const edges = (t: Awaited<ReturnType<TopologyStore['getTree']>>) => t.filter((e) => e.parent !== null).map((e) => `${e.parent}>${e.nodeId}`).sort();
      wipe();
      await controller.registerNode(record('origin', 'origin', { maxViewers: 0, maxChildren: 2 }), 'ready');
      await controller.putStream({ id: 'stream1', title: 'T', state: 'live', createdAt: clock.t, updatedAt: clock.t, originNodeId: 'origin', owner: 'alice' });
      const carried = (parent: string, children: string[], pipeTicket?: string): NodeSnapshot => ({
        ...snap(0),
        streams: [{ streamId: 'stream1', parentNodeId: parent, depth: 1, viewers: 0, children: children.length, childNodeIds: children, bitrateOutKbps: 0, ...(pipeTicket ? { pipeTicket } : {}) }],
      });
      const originBeat = () =>
        controller.nodeHeartbeat(record('origin', 'origin', { maxViewers: 0, maxChildren: 2 }), 'ready', {
          ...snap(0),
          streams: [{ streamId: 'stream1', parentNodeId: null, depth: 0, viewers: 0, children: 2, childNodeIds: [placed.nodeId, 'rM'], bitrateOutKbps: 0 }],
        });
      const real = [a, b].find((r) => r.id === placed.nodeId)!;
      // rM claims the origin as its parent, and the origin vouches for it as a colluder would: no
      // ticket, no edge; nor with the ticket of another relay's edge. The relay the controller
      // placed brings its own ticket: its edge comes back.
      await controller.nodeHeartbeat(m, 'ready', carried('origin', []));
      await controller.nodeHeartbeat(real, 'ready', carried('origin', [], ticket));
      await originBeat();
      await controller.nodeHeartbeat(m, 'ready', carried('origin', [], ticket));
      await originBeat();
      expect(edges(await store.getTree('stream1'))).toEqual([`origin>${real.id}`]);
    });

    it('a demoted relay that was restored is re-created ready, and one never seen here keeps what its holder says', async () => {
      const { store, wipe } = wipeableStore();
      const { controller } = await setup({ originBudget: 0, store });
      const r = record('rA', 'relay', { maxViewers: 5 });
      await controller.registerNode(r, 'ready');
      await controller.suspectNode(r.id);
      for (let i = 0; i < 5; i++) await controller.nodeHeartbeat(r, 'demoted', snap(0));
      expect((await store.getNode(r.id, clock.t))?.status).toBe('ready');
      wipe();
      await controller.nodeHeartbeat(r, 'demoted', snap(0));
      expect((await store.getNode(r.id, clock.t))?.status).toBe('ready');
      // A node gone is forgotten: if it comes back unannounced, the caller's status stands.
      await controller.nodeGone(r.id, 'test');
      wipe();
      await controller.nodeHeartbeat(r, 'probing', snap(0));
      expect((await store.getNode(r.id, clock.t))?.status).toBe('probing');
    });
  });

  it('close() is idempotent and emits close once', async () => {
    const { controller } = await setup();
    const closed = vi.fn();
    controller.observer.on('close', closed);
    controller.close();
    controller.close();
    expect(closed).toHaveBeenCalledTimes(1);
    expect(controller.closed).toBe(true);
  });
});
