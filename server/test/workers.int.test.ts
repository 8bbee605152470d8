import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startChromiumBroadcaster, startNodeViewer, startServer, waitFor, type NodeProcess, type NodeViewer, type TestBroadcaster } from '@cascade/testing';
import { mediaObjects } from './metrics.js';

/**
 * The default run uses one worker per core; a stream's viewers spill from its router to a
 * router of the same stream on another worker (piped, mediasoup's pipeToRouter) once a router
 * holds `consumersPerRouter`. Here two workers and one consumer per router force the spill.
 */
let origin: NodeProcess;
let broadcaster: TestBroadcaster;
const viewers: NodeViewer[] = [];

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_MEDIASOUP_NUM_WORKERS: '2', CASCADE_MEDIASOUP_CONSUMERS_PER_ROUTER: '1' } });
  broadcaster = await startChromiumBroadcaster(origin.url);
});
afterAll(async () => {
  for (const v of viewers) v.stop();
  await broadcaster?.stop();
  await origin?.stop();
});

describe('one stream across several workers', () => {
  it('runs the workers asked for', async () => {
    const h = await getJson<{ workers: number }>(`${origin.url}/healthz`);
    expect(h.body.workers).toBe(2);
  });

  it('viewers beyond a router spill to routers on the other worker, and every viewer receives media', async () => {
    for (let i = 0; i < 3; i++) viewers.push(await startNodeViewer(origin.url, broadcaster.streamId));
    const before = viewers.map((v) => v.counters.frames);
    await waitFor(() => viewers.every((v, i) => v.counters.frames >= before[i]! + 20), { what: 'every viewer to receive 20 more frames', timeoutMs: 30_000 });
    const { routers } = await mediaObjects(origin.url);
    // The broadcaster's router plus the routers the viewers spilled to.
    expect(routers).toBeGreaterThanOrEqual(2);
  });
});
