import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getJson,
  issueToken,
  startChromiumBroadcaster,
  startNodeViewer,
  startRedis,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type RedisServer,
  type TestBroadcaster,
} from '@cascade/testing';

/**
 * An origin without a controller of its own (`roles: [origin]`) works against a remote one: it
 * registers over /control like any media node, its streams are the controller's to list, and a
 * viewer at the origin's endpoint that the controller places on a relay is carried there from
 * the origin through its control connection.
 */
let redis: RedisServer;
let controller: NodeProcess;
let origin: NodeProcess;
let relay: NodeProcess & { nodeId: string };
let broadcaster: TestBroadcaster;
const viewers: NodeViewer[] = [];

beforeAll(async () => {
  redis = await startRedis();
  controller = await startServer({ env: { CASCADE_ROLES: '["controller"]', CASCADE_REDIS_URL: redis.url } });
  origin = await startServer({ env: { CASCADE_ROLES: '["origin"]', CASCADE_ORIGIN_CONTROLLER_URL: controller.url, CASCADE_ORIGIN_MAX_VIEWERS: '1' } });
  relay = await startRelay({ controllerUrl: controller.url, token: issueToken({ scope: ['relay'], sub: 'remote' }), maxViewers: 2 });
  broadcaster = await startChromiumBroadcaster(origin.url);
}, 120_000);

afterAll(async () => {
  for (const v of viewers) v.stop();
  await broadcaster?.stop();
  await relay?.stop();
  await origin?.stop();
  await controller?.stop();
  await redis?.stop();
});

describe('an origin without a controller of its own', () => {
  it('registers with the remote controller as an origin, and its stream is the controller\'s to list', async () => {
    const nodes = (await getJson<{ nodes: { id: string; kind: string; status: string }[] }>(`${controller.url}/api/nodes`)).body.nodes;
    expect(nodes.filter((n) => n.kind === 'origin' && n.status === 'ready')).toHaveLength(1);
    const stream = await waitFor(async () => {
      const r = await getJson<{ state: string }>(`${controller.url}/api/streams/${broadcaster.streamId}`);
      return r.status === 200 && r.body.state === 'live' ? r.body : undefined;
    }, { what: 'the live stream listed by the controller' });
    expect(stream.state).toBe('live');
    expect(controller.logs.some((l) => l.includes('origin registered'))).toBe(true);
  });

  it('serves its first viewer itself and carries the next to the relay the controller picks', async () => {
    for (let i = 0; i < 2; i++) viewers.push(await startNodeViewer(origin.url, broadcaster.streamId));
    const originId = (await getJson<{ node: string }>(`${origin.url}/healthz`)).body.node;
    expect(viewers.map((v) => v.watch.nodeId).sort()).toEqual([originId, relay.nodeId].sort());
    const start = viewers.map((v) => v.counters.frames);
    await waitFor(() => viewers.every((v, i) => v.counters.frames >= start[i]! + 20), { what: 'both viewers to receive frames', timeoutMs: 30_000 });
  });
});
