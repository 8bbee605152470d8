import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getJson,
  issueToken,
  startChromiumBroadcaster,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type TestBroadcaster,
} from '@cascade/testing';

interface Topology {
  depth: number;
  viewers: number;
  relayShare: number;
  nodes: { id: string; kind: string; volunteer: boolean; parent: string | null; depth: number; viewers: number; children: number }[];
}

/**
 * Origin + four relays on loopback with K = 2 and an origin budget of one viewer: the
 * audience forces a tree of depth 2, and every viewer receives media through it.
 */
let origin: NodeProcess;
const relays: (NodeProcess & { nodeId: string })[] = [];
let broadcaster: TestBroadcaster;
const viewers: NodeViewer[] = [];

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '1', CASCADE_TOPOLOGY_MAX_CHILDREN: '2' } });
  for (let i = 0; i < 4; i++) {
    // Two dedicated relays and two volunteers; volunteers should end up as leaves.
    const volunteer = i >= 2;
    relays.push(
      await startRelay({
        controllerUrl: origin.url,
        token: issueToken({ scope: ['relay'], sub: volunteer ? `volunteer${i}` : `dedicated${i}`, volunteer }),
        maxViewers: 1,
        maxChildren: 2,
      }),
    );
  }
  broadcaster = await startChromiumBroadcaster(origin.url);
});

afterAll(async () => {
  for (const v of viewers) v.stop();
  await broadcaster?.stop();
  await Promise.all(relays.map((r) => r.stop()));
  await origin?.stop();
});

describe('relay tree', () => {
  it('viewers beyond the origin budget are served by relays, in a tree of depth 2', async () => {
    for (let i = 0; i < 5; i++) viewers.push(await startNodeViewer(origin.url, broadcaster.streamId));
    const served = viewers.map((v) => v.watch.nodeId);
    expect(new Set(served).size).toBe(5);
    const topo = await waitFor(async () => {
      const t = (await getJson<Topology>(`${origin.url}/api/streams/${broadcaster.streamId}/topology`)).body;
      return t.nodes.length === 5 ? t : undefined;
    }, { what: 'five nodes in the topology' });
    expect(topo.depth).toBe(2);
    const byId = new Map(topo.nodes.map((n) => [n.id, n]));
    const root = topo.nodes.find((n) => n.kind === 'origin')!;
    expect(root.parent).toBeNull();
    expect(topo.nodes.filter((n) => n.parent === root.id).length).toBeLessThanOrEqual(2);
    for (const n of topo.nodes) expect(topo.nodes.filter((c) => c.parent === n.id).length).toBeLessThanOrEqual(2);
    for (const n of topo.nodes.filter((x) => x.kind === 'relay')) {
      expect(byId.get(n.parent!)!.depth).toBe(n.depth - 1);
      expect(n.depth).toBe(n.volunteer ? 2 : 1);
    }
  });

  it('every viewer receives media (packets and frames grow)', async () => {
    const before = viewers.map((v) => ({ ...v.counters }));
    await waitFor(() => viewers.every((v, i) => v.counters.frames >= before[i]!.frames + 30 && v.counters.bytes > before[i]!.bytes), {
      what: 'every viewer to receive 30 more frames',
      timeoutMs: 30_000,
    });
  });

  it('the topology API reports viewers per node and the share served by relays', async () => {
    const topo = await waitFor(async () => {
      const t = (await getJson<Topology>(`${origin.url}/api/streams/${broadcaster.streamId}/topology`)).body;
      return t.viewers === 5 ? t : undefined;
    }, { what: 'five viewers counted' });
    expect(topo.relayShare).toBeCloseTo(4 / 5);
    for (const n of topo.nodes) expect(n.viewers).toBe(1);
  });

  it('each relay reports its own viewers on /healthz and /metrics', async () => {
    for (const r of relays) {
      const h = await getJson<{ viewers: number; streams: number; controller: string }>(`${r.url}/healthz`);
      expect(h.body).toMatchObject({ viewers: 1, streams: 1, controller: 'ready' });
      const m = await getJson<string>(`${r.url}/metrics`);
      expect(m.body).toMatch(/cascade_node_viewers\{[^}]*\} 1/);
    }
  });
});
