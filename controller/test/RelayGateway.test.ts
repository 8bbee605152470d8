import { createServer } from 'node:http';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { channelPair, ControlRequests, Peer, RelayNotifications, RelayRequests, silentLogger } from '@cascade/protocol';
import { UpgradeRouter } from '@cascade/protocol/node';
import { RelayGateway, type RelayGatewayOptions } from '../src/gateway/RelayGateway.js';
import { MemoryTopologyStore } from '../src/store/MemoryTopologyStore.js';
import { TokenService } from '../src/auth/TokenService.js';
import { TopologyController } from '../src/TopologyController.js';
import { MemoryMessageBus } from '../src/tunnels/MemoryMessageBus.js';
import { TunnelRouter } from '../src/tunnels/TunnelRouter.js';

const SECRET = 'relay-gateway-unit-test-secret-0123456789';
const OPTIONS: RelayGatewayOptions = {
  pingIntervalMs: 250,
  suspectAfterMs: 1500,
  deadAfterMs: 5000,
  maxConnections: 10,
  maxMessageBytes: 256 * 1024,
  rateLimitPerSec: 100,
  requestTimeoutMs: 5000,
  // Long: these tests look at registration, not at the checks after it.
  probeTimeoutMs: 600_000,
  registerTimeoutMs: 1000,
  heartbeatIntervalMs: 1000,
  addressPolicy: 'any',
  trustProxy: [],
  uploadTestMaxKbps: 0,
};

async function setup() {
  const clock = { t: 1_700_000_000_000, now() { return this.t; } };
  const tokens = new TokenService(SECRET);
  const store = new MemoryTopologyStore();
  const controller = await TopologyController.create(
    { maxChildren: 2, heartbeatIntervalMs: 1000, nodeTtlMs: 3000, demoteCpu: 0.9, demoteLossRate: 0.1, viewerKbps: 1700, ticketTtlSec: 60, watchTokenRequired: false, endedRetentionMs: 60_000 },
    { store, logger: silentLogger, tokens, clock },
  );
  const router = new TunnelRouter(new MemoryMessageBus(), { routeTtlMs: 4000 }, { logger: silentLogger });
  const gateway = new RelayGateway(new UpgradeRouter(createServer()), OPTIONS, { controller, tokens, router, logger: silentLogger, clock });
  /** A node's end of a control connection to the gateway, and how it was closed. */
  const connect = () => {
    const [nodeSide, gatewaySide] = channelPair();
    const closed: { code?: number; reason?: string } = {};
    nodeSide.onClose((code, reason) => Object.assign(closed, { code, reason }));
    const node = new Peer({ channel: nodeSide, inbound: RelayRequests, outbound: ControlRequests, notifications: RelayNotifications, ignoreUnknownNotifications: true });
    gateway.attach(gatewaySide, '127.0.0.1');
    return { node, closed };
  };
  const register = (node: ReturnType<typeof connect>['node'], sub = 'alice') =>
    node.request('node.register', {
      token: tokens.issue({ scope: ['relay'], sub }, 3600),
      node: { mediaIp: '127.0.0.1', mediaPort: 9, probe: { ufrag: 'ufrag1', pwd: 'p'.repeat(22) }, probePort: 9, capacity: { maxViewers: 10, maxChildren: 2, upKbps: 50_000, downKbps: 50_000 } },
      streams: [],
    });
  const close = async () => {
    await gateway.close();
    router.close();
    controller.close();
  };
  return { clock, controller, gateway, connect, register, close };
}

describe('RelayGateway on fake time', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] }));
  afterEach(() => vi.useRealTimers());

  it('a connection that has not registered after registerTimeoutMs is closed with CASCADE_ERR_RELAY_NOT_REGISTERED (4409)', async () => {
    const g = await setup();
    const { closed } = g.connect();
    await vi.advanceTimersByTimeAsync(OPTIONS.registerTimeoutMs - 1);
    expect(closed.code).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(closed).toEqual({ code: 4409, reason: 'CASCADE_ERR_RELAY_NOT_REGISTERED' });
    await g.close();
  });

  it('a node that registers in time is not cut off by the deadline, and is registered at the injected time', async () => {
    const g = await setup();
    const { node, closed } = g.connect();
    const answer = await g.register(node);
    expect(answer.heartbeatIntervalMs).toBe(OPTIONS.heartbeatIntervalMs);
    expect(answer.nodeId).toMatch(/^alice-[0-9a-f]{6}$/);
    await vi.advanceTimersByTimeAsync(OPTIONS.registerTimeoutMs * 5);
    expect(closed.code).toBeUndefined();
    expect((await g.controller.getNode(answer.nodeId))?.registeredAt).toBe(g.clock.t);
    await g.close();
  });

  it('before its checks pass, a registered node gets no traffic: stream.parentLost is refused', async () => {
    const g = await setup();
    const { node } = g.connect();
    await g.register(node);
    await expect(node.request('stream.parentLost', { streamId: 'k3v9d2xq7m', parentNodeId: 'origin' })).rejects.toMatchObject({ code: 'CASCADE_ERR_RELAY_NOT_REGISTERED' });
    await g.close();
  });

  it('requests before node.register are refused, and the connection still gets its deadline', async () => {
    const g = await setup();
    const { node, closed } = g.connect();
    await expect(node.request('stream.list', {})).rejects.toMatchObject({ code: 'CASCADE_ERR_RELAY_NOT_REGISTERED' });
    await vi.advanceTimersByTimeAsync(OPTIONS.registerTimeoutMs);
    expect(closed.code).toBe(4409);
    await g.close();
  });
});
