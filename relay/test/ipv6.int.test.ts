import os from 'node:os';
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

/**
 * IPv6 end to end: a relay that has only an IPv6 address (::1) registers, passes the checks of its media port,
 * pulls the stream from a dual-stack origin over an IPv6 pipe, and serves a viewer whose
 * signalling and media are IPv6 too. Nothing on the relay listens on IPv4, so media that
 * arrives could only have come over IPv6.
 */
const hasV6Loopback = Object.values(os.networkInterfaces()).some((list) => list?.some((a) => a.address === '::1'));

let origin: NodeProcess;
let relay: NodeProcess & { nodeId: string };
let broadcaster: TestBroadcaster;
let viewer: NodeViewer | undefined;

describe.skipIf(!hasV6Loopback)(`IPv6${hasV6Loopback ? '' : ' (SKIPPED: this host has no ::1)'}`, () => {
  beforeAll(async () => {
    // Dual stack: the broadcaster's browser reaches it over IPv4, the relay over IPv6.
    origin = await startServer({
      env: {
        CASCADE_HTTP_HOST: '::',
        CASCADE_ORIGIN_MAX_VIEWERS: '0',
        CASCADE_MEDIASOUP_LISTEN_IPS: '[{"ip":"127.0.0.1","announcedIp":""},{"ip":"::1","announcedIp":""}]',
      },
    });
    relay = await startRelay({
      controllerUrl: `http://[::1]:${origin.port}`,
      token: issueToken({ scope: ['relay'], sub: 'v6' }),
      host: '[::1]',
      env: { CASCADE_HTTP_HOST: '::1', CASCADE_MEDIASOUP_LISTEN_IPS: '[{"ip":"::1","announcedIp":""}]' },
    });
    broadcaster = await startChromiumBroadcaster(origin.url);
  }, 120_000);

  afterAll(async () => {
    viewer?.stop();
    await broadcaster?.stop();
    await relay?.stop();
    await origin?.stop();
  });

  it('the relay registers with its IPv6 address and passes the reachability probe', async () => {
    const { body } = await getJson<{ nodes: { id: string; mediaIp: string; status: string }[] }>(`${origin.url}/api/nodes`);
    const node = body.nodes.find((n) => n.id === relay.nodeId);
    expect(node).toMatchObject({ status: 'ready', mediaIp: '::1' });
  });

  it('a viewer entering over IPv6 is placed on the relay, which pulls over an IPv6 pipe, and receives frames', async () => {
    viewer = await startNodeViewer(`http://[::1]:${origin.port}`, broadcaster.streamId);
    expect(viewer.watch.nodeId).toBe(relay.nodeId);
    await waitFor(() => viewer!.counters.frames >= 30 && viewer!.counters.keyframes >= 1, {
      what: 'the IPv6 viewer to receive 30 frames and a key frame',
      timeoutMs: 30_000,
    });
    // The origin fed this relay (whose only address is ::1) through a pipe.
    expect(origin.logs.some((l) => l.includes('child pipe open') && l.includes(relay.nodeId))).toBe(true);
  });
});
