import { setTimeout as sleep } from 'node:timers/promises';
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

/** Key frame requests toward the broadcaster at most this often, per layer (ms): longer than any join here. */
const THROTTLE_MS = 4000;

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

describe("a first pull's video", () => {
  it('waits for the viewer it was pulled for: its first key frame is the pipe\'s first, not the next one the throttle allows', async () => {
    await b?.stop();
    await relay?.stop();
    await origin?.stop();
    origin = await startServer({
      env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_ORIGIN_KEY_FRAME_REQUEST_DELAY_MS: String(THROTTLE_MS), CASCADE_ORIGIN_LAYER_KEY_FRAME_REQUEST_DELAY_MS: JSON.stringify([THROTTLE_MS, THROTTLE_MS, THROTTLE_MS]) },
    });
    relay = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'firstpull' }) });
    b = await startChromiumBroadcaster(origin.url);
    // Whatever asked for key frames as the broadcast began is a throttle period behind us.
    await sleep(THROTTLE_MS + 500);
    const joined = Date.now();
    const v = await startNodeViewer(origin.url, b.streamId);
    expect(v.watch.nodeId).toBe(relay.nodeId);
    // The relay asks its new parent for the video once this viewer can take it: the key frame
    // that asks for reaches the viewer. Sent as the pipe opened, it went to nobody, and the
    // viewer's own request waited for the throttle (a key frame THROTTLE_MS after the pipe's).
    const first = await waitFor(() => v.counters.firstKeyframeAt, { what: 'a first key frame at the viewer', timeoutMs: 3 * THROTTLE_MS });
    v.stop();
    console.log(`[linger] first pull: first key frame ${first - joined} ms after the join began (throttle ${THROTTLE_MS} ms)`);
    expect(first - joined).toBeLessThan(THROTTLE_MS);
  });
});
