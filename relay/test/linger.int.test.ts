import { afterAll, describe, expect, it } from 'vitest';
import {
  getJson,
  issueToken,
  startChromiumBroadcaster,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type TestBroadcaster,
} from '@cascade/testing';

/** A relay pulls a stream on demand and drops it a while after its last viewer leaves. */
let origin: NodeProcess;
let relay: NodeProcess & { nodeId: string };
let b: TestBroadcaster;

afterAll(async () => {
  await b?.stop();
  await relay?.stop();
  await origin?.stop();
});

describe('on-demand pulls', () => {
  it('a relay pulls a stream when a viewer is placed on it and drops it after the linger time', async () => {
    origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0' } });
    relay = await startRelay({
      controllerUrl: origin.url,
      token: issueToken({ scope: ['relay'], sub: 'linger' }),
      env: { CASCADE_RELAY_LINGER_MS: '1000' },
    });
    b = await startChromiumBroadcaster(origin.url);
    expect((await getJson<{ streams: number }>(`${relay.url}/healthz`)).body.streams).toBe(0);
    const v = await startNodeViewer(origin.url, b.streamId);
    expect(v.watch.nodeId).toBe(relay.nodeId);
    await waitFor(() => v.counters.frames > 10, { what: 'media through the relay' });
    expect((await getJson<{ streams: number }>(`${relay.url}/healthz`)).body.streams).toBe(1);
    v.stop();
    await waitFor(async () => (await getJson<{ streams: number }>(`${relay.url}/healthz`)).body.streams === 0, {
      what: 'the relay to drop the stream after its linger time',
    });
    const topo = await waitFor(async () => {
      const t = (await getJson<{ nodes: { id: string }[] }>(`${origin.url}/api/streams/${b.streamId}/topology`)).body;
      return t.nodes.every((n) => n.id !== relay.nodeId) ? t : undefined;
    }, { what: 'the relay gone from the stream tree' });
    expect(topo.nodes.map((n) => n.id)).toHaveLength(1);
    expect(relay.logs.join('\n')).toContain('stopped carrying stream');
  });
});
