import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RawClient,
  getJson,
  issueToken,
  openRawRelay,
  startChromiumBroadcaster,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type RawRelay,
  type TestBroadcaster,
} from '@cascade/testing';

/**
 * A relay assigned to a parent that refuses its pipe (here a raw relay that serves a viewer's
 * session but refuses every pipe.open carried to it) must not stay without media while the tree
 * says it is fed: it reports the parent as lost and the controller moves it under another one.
 */
interface TopoNode { id: string; parent: string | null; depth: number }

let origin: NodeProcess;
let broadcaster: TestBroadcaster;
let hostile: RawRelay;
let hostileId: string;
let hostileViewer: RawClient;
let fallback: NodeProcess & { nodeId: string };
let stranded: NodeProcess & { nodeId: string };
const viewers: NodeViewer[] = [];

const topology = async () => (await getJson<{ nodes: TopoNode[] }>(`${origin.url}/api/streams/${broadcaster.streamId}/topology`)).body.nodes ?? [];
const parentOf = async (id: string) => (await topology()).find((n) => n.id === id)?.parent;

beforeAll(async () => {
  // The origin serves no viewer itself and feeds two relays: the hostile one and the fallback.
  origin = await startServer({
    env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_TOPOLOGY_MAX_CHILDREN: '2', CASCADE_ORIGIN_MAX_CHILD_RELAYS: '2', CASCADE_TOPOLOGY_NODE_TTL_MS: '30000' },
  });
  broadcaster = await startChromiumBroadcaster(origin.url);
}, 120_000);

afterAll(async () => {
  for (const v of viewers) v.stop();
  hostileViewer?.close();
  hostile?.close();
  await stranded?.stop();
  await fallback?.stop();
  await broadcaster?.stop();
  await origin?.stop();
});

describe('a parent that refuses the pipe', () => {
  it('sets up: a hostile dedicated relay and a volunteer under the origin, both full', async () => {
    // The hostile relay is placed a viewer of its own: the controller attaches it under the origin.
    hostile = await openRawRelay(origin.url, {
      token: issueToken({ scope: ['relay'], sub: 'hostile' }),
      capacity: { maxViewers: 1, maxChildren: 2, upKbps: 10_000, downKbps: 10_000 },
    });
    hostileId = hostile.reg.data!.nodeId as string;
    // It answers the watch of the one viewer the controller carries to it, and refuses every pull.
    hostile.c.onNotification<{ id: string; data: string }>('tunnel.data', ({ id, data }) => {
      const m = JSON.parse(data) as { id: number; type: string };
      const answer =
        m.type === 'stream.watch'
          ? { v: 1, id: m.id, ok: true, data: { action: 'serve', nodeId: hostileId, rtpCapabilities: { codecs: [] }, iceServers: [], stream: { id: broadcaster.streamId, title: 't', state: 'live', createdAt: 1 } } }
          : { v: 1, id: m.id, ok: false, error: { code: 'CASCADE_ERR_STREAM_NOT_FOUND', message: 'not here' } };
      hostile.c.send(JSON.stringify({ v: 1, type: 'tunnel.data', data: { id, data: JSON.stringify(answer) } }));
    });
    hostileViewer = await RawClient.open(origin.url);
    const placed = await hostileViewer.request('stream.watch', { streamId: broadcaster.streamId });
    expect(placed, JSON.stringify(placed.error)).toMatchObject({ ok: true, data: { nodeId: hostileId } });
    fallback = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'fallback', volunteer: true }), maxViewers: 1, maxChildren: 2 });
    viewers.push(await startNodeViewer(origin.url, broadcaster.streamId));
    expect(viewers[0]!.watch.nodeId).toBe(fallback.nodeId);
    expect(await parentOf(hostileId)).not.toBeUndefined();
    expect(await parentOf(fallback.nodeId)).not.toBeUndefined();
  });

  it('a relay attached under the refusing parent ends up fed by another one, and its viewer gets media', async () => {
    // Dedicated before volunteers: the new relay's first parent is the hostile one.
    stranded = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'stranded' }), maxViewers: 1, maxChildren: 2 });
    const v = await startNodeViewer(origin.url, broadcaster.streamId);
    viewers.push(v);
    expect(v.watch.nodeId).toBe(stranded.nodeId);
    await waitFor(async () => (await parentOf(stranded.nodeId)) === fallback.nodeId, {
      what: `the stranded relay to be moved under ${fallback.nodeId} (hostile parent ${hostileId})`,
      timeoutMs: 15_000,
    });
    const start = v.counters.frames;
    await waitFor(() => v.counters.frames >= start + 20, { what: "the stranded relay's viewer to receive 20 frames", timeoutMs: 15_000 });
    expect(v.watch.nodeId).toBe(stranded.nodeId);
    // It was the refused pull that moved it (not, say, the hostile relay expiring).
    const refused = stranded.logs.filter((l) => l.includes('cannot pull the stream from the assigned parent'));
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((l) => (JSON.parse(l) as { parentId?: string }).parentId === hostileId)).toBe(true);
  });
});
