import { request as httpRequest } from 'node:http';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
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
  nodes: { id: string; kind: string; volunteer: boolean; parent: string | null; depth: number; viewers: number; children: number; bitrateOutKbps: number }[];
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

/** The HTTP status an upgrade request to `url` gets (101 when a WebSocket endpoint is there). */
function rawUpgrade(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve(101);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to an upgrade request to ${url}`)));
    req.end();
  });
}

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
    for (const n of topo.nodes) {
      expect(n.viewers).toBe(1);
      expect(n.children, n.id).toBe(topo.nodes.filter((c) => c.parent === n.id).length);
    }
    // Every node serves a viewer, so every node reports the media it sends out.
    const rates = await waitFor(async () => {
      const t = (await getJson<Topology>(`${origin.url}/api/streams/${broadcaster.streamId}/topology`)).body;
      return t.nodes.every((n) => n.bitrateOutKbps > 0) ? t.nodes : undefined;
    }, { what: 'every node reporting its bitrate out' });
    expect(rates.length).toBe(5);
  });

  it('the status page draws the tree, each relay under its parent, and the share served by relays', async () => {
    const topo = (await getJson<Topology>(`${origin.url}/api/streams/${broadcaster.streamId}/topology`)).body;
    const page = await broadcaster.browser.newPage();
    try {
      await page.goto(`${origin.url}/status/${broadcaster.streamId}`);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=node]').length === 5);
      expect(await page.textContent('[data-testid=relay-share]')).toBe('80 %');
      expect(await page.textContent('[data-testid=viewers]')).toBe('5');
      expect(await page.textContent('[data-testid=depth]')).toBe('2');
      // Where each node is drawn: under the node of the list item that holds its list.
      const drawn = await page.$$eval('[data-testid=node]', (els) =>
        els.map((e) => ({
          id: e.getAttribute('data-node-id'),
          under: e.parentElement?.parentElement?.closest('li')?.querySelector(':scope > .node')?.getAttribute('data-node-id') ?? null,
        })),
      );
      expect(new Map(drawn.map((d) => [d.id, d.under]))).toEqual(new Map(topo.nodes.map((n) => [n.id, n.parent])));
      const artifacts = path.join(REPO_ROOT, 'test-artifacts');
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: path.join(artifacts, 'status.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  it('each relay tells its volunteer what it does: registered, reachable, the stream it carries, viewers served, bytes relayed', async () => {
    const streamId = broadcaster.streamId;
    for (const r of relays) {
      // The progress line comes every 5 s: wait for one that counts this relay's viewer.
      const lines = await waitFor(() => {
        const l = r.logs.filter((x) => x.startsWith('[cascade-relay] '));
        const served = l.some((x) => {
          const m = / (\d+) viewer.* ([\d.]+) MB relayed/.exec(x);
          return !!m && Number(m[1]) >= 1 && Number(m[2]) > 0;
        });
        return served ? l : undefined;
      }, { what: `a progress line of ${r.nodeId} with its viewer and the bytes it relayed`, timeoutMs: 15_000 });
      const text = lines.join('\n');
      expect(text).toContain(`registered as ${r.nodeId}`);
      expect(text).toContain('reachability checked: ready to relay');
      expect(text).toMatch(new RegExp(`carrying stream ${streamId} from \\S+`));
    }
  });

  it('a relay opens no signalling port: viewers enter at the public endpoint only, and it tells them when every node is full', async () => {
    // The relay's own HTTP server is its status page: no /ws for viewers.
    const ws = await rawUpgrade(`${relays[0]!.url}/ws?v=1`);
    expect(ws).toBe(404);
    // Every node is full for this stream: the public endpoint says so.
    const refused = await startNodeViewer(origin.url, broadcaster.streamId).then(
      (v) => {
        v.stop();
        return 'served';
      },
      (err: Error & { code?: string }) => err.code ?? err.message,
    );
    expect(refused).toBe('CASCADE_ERR_NODE_CAPACITY');
    // With room on a new relay, the next viewer is served by it, through the controller.
    relays.push(await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'dedicated4' }), maxViewers: 1, maxChildren: 2 }));
    const v = await startNodeViewer(origin.url, broadcaster.streamId);
    viewers.push(v);
    expect(v.watch.nodeId).toBe(relays[4]!.nodeId);
    const start = v.counters.frames;
    await waitFor(() => v.counters.frames >= start + 20, { what: 'the new relay\'s viewer to receive frames', timeoutMs: 30_000 });
  });

  it('a second stream spills to relays too: K counts per stream, the origin feeds several trees', async () => {
    const second = await startChromiumBroadcaster(origin.url);
    try {
      for (let i = 5; i < 7; i++) {
        relays.push(await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: `dedicated${i}` }), maxViewers: 1, maxChildren: 2 }));
      }
      const mine: NodeViewer[] = [];
      for (let i = 0; i < 2; i++) mine.push(await startNodeViewer(origin.url, second.streamId));
      viewers.push(...mine);
      const topo = (await getJson<Topology>(`${origin.url}/api/streams/${second.streamId}/topology`)).body;
      const root = topo.nodes.find((n) => n.kind === 'origin')!;
      expect(topo.nodes.filter((n) => n.parent === root.id).length).toBe(2);
      expect(new Set(mine.map((v) => v.watch.nodeId))).toEqual(new Set([relays[5]!.nodeId, relays[6]!.nodeId]));
      const before = mine.map((v) => v.counters.frames);
      await waitFor(() => mine.every((v, i) => v.counters.frames >= before[i]! + 20), { what: "the second stream's viewers to receive frames", timeoutMs: 30_000 });
    } finally {
      await second.stop();
    }
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
