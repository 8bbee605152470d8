import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
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
 * A relay's control connection dies while the controller carries a viewer's join to it: the
 * viewer gets a retryable error at once (not a timeout) and is placed on another relay.
 */
let origin: NodeProcess;
let broadcaster: TestBroadcaster;
let vanishing: RawRelay;
let steady: NodeProcess & { nodeId: string };
let viewer: NodeViewer | undefined;

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_TOPOLOGY_MAX_CHILDREN: '2' } });
  broadcaster = await startChromiumBroadcaster(origin.url);
  steady = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'steady', volunteer: true }), maxViewers: 2 });
  // Dedicated relays are placed before volunteers: the first join goes to the vanishing one. Opened
  // last: it sends no heartbeats, and is forgotten topology.nodeTtlMs (3 s) after registering
  // (in one CI run the join went to the steady relay: most likely the vanishing one had been
  // forgotten while the steady one started).
  vanishing = await openRawRelay(origin.url, { token: issueToken({ scope: ['relay'], sub: 'vanishing' }) });
  vanishing.c.onNotification<{ id: string }>('tunnel.data', () => vanishing.c.ws.terminate());
}, 120_000);

afterAll(async () => {
  viewer?.stop();
  vanishing?.close();
  await steady?.stop();
  await broadcaster?.stop();
  await origin?.stop();
});

describe('a relay lost in the middle of a viewer joining it', () => {
  it('the viewer is told at once (NODE_GONE, retryable) and joins another relay', async () => {
    viewer = await startNodeViewer(origin.url, broadcaster.streamId);
    expect(viewer.watch.nodeId).toBe(steady.nodeId);
    // The SDK saw the node go (not a timeout) and tried again.
    expect(viewer.counters.warnings.join('\n')).toContain('CASCADE_ERR_NODE_GONE');
    expect(origin.logs.some((l) => l.includes('node disconnected') && l.includes(vanishing.reg.data!.nodeId as string))).toBe(true);
    const start = viewer.counters.frames;
    await waitFor(() => viewer!.counters.frames >= start + 20, { what: 'the viewer to receive frames from the steady relay', timeoutMs: 30_000 });
  });
});
