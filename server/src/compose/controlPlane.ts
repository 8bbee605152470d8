import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import type { Logger } from '@cascade/protocol';
import type { CascadeConfig } from '@cascade/config';
import type { UpgradeRouter } from '@cascade/protocol/node';
import {
  LocalControlPlane,
  MemoryMessageBus,
  MemoryTopologyStore,
  RedisMessageBus,
  RedisTopologyStore,
  RelayGateway,
  TokenService,
  TopologyController,
  TunnelRouter,
  type CreditService,
  type MessageBus,
  type RelayTokens,
  type TopologyStore,
} from '@cascade/controller';
import { RemoteControlPlane, nodeSnapshot, type ControlPlane, type MediaNode, type TicketVerifier, type TrafficMeter } from '@cascade/sfu';
import { originCapacity } from '../origin/OriginNode.js';

/** The controller side of a process with the controller role: store, bus, controller, tunnel router. */
export interface ControllerParts {
  store: TopologyStore;
  bus: MessageBus;
  controller: TopologyController;
  router: TunnelRouter;
  close(): Promise<void>;
}

/** Store and bus are chosen once, together: Redis when configured (several instances), else in process. */
export async function startController(config: Readonly<CascadeConfig>, deps: { logger: Logger; tokens: TokenService }): Promise<ControllerParts> {
  const log = deps.logger;
  // K also bounds the tree edges heartbeats restore after the store lost them.
  const storeOptions = { maxChildren: config.topology.maxChildren };
  const store: TopologyStore = config.redis.url
    ? await RedisTopologyStore.connect({ url: config.redis.url, ...storeOptions }, { logger: log })
    : new MemoryTopologyStore(storeOptions);
  const bus: MessageBus = config.redis.url ? await RedisMessageBus.connect({ url: config.redis.url }, { logger: log }) : new MemoryMessageBus();
  log.info({ store: store.kind, bus: bus.kind, instance: bus.instanceId }, 'topology store ready');
  const ticketKey = config.auth.ticketKeyFile ? readTicketKey(config.auth.ticketKeyFile) : undefined;
  const controller = await TopologyController.create(
    {
      maxChildren: config.topology.maxChildren,
      heartbeatIntervalMs: config.topology.heartbeatIntervalMs,
      nodeTtlMs: config.topology.nodeTtlMs,
      demoteCpu: config.topology.demoteCpu,
      demoteLossRate: config.topology.demoteLossRate,
      viewerKbps: config.topology.viewerKbps,
      ticketTtlSec: config.auth.ticketTtlSec,
      watchTokenRequired: config.auth.watchTokenRequired,
      endedRetentionMs: config.origin.endedRetentionMs,
      maxEndedStreams: config.origin.maxEndedStreams,
    },
    { store, logger: log, tokens: deps.tokens, ...(ticketKey ? { ticketKey } : {}) },
  );
  controller.start();
  const router = new TunnelRouter(bus, { routeTtlMs: config.topology.nodeTtlMs + config.topology.heartbeatIntervalMs }, { logger: log });
  // A node declared gone because its heartbeats stopped may only have lost its controller: its
  // sessions stay (the viewers' SDKs judge by their media). A node whose own connection closed
  // is gone for sure, and the instance that held it tells its sessions' other ends at once.
  return {
    store,
    bus,
    controller,
    router,
    async close() {
      router.close();
      controller.close();
      await bus.close();
      await store.close();
    },
  };
}

/** The controller's `/control` endpoint for media nodes, its timings derived from the heartbeat period. */
export function startGateway(
  config: Readonly<CascadeConfig>,
  deps: { parts: ControllerParts; upgrades: UpgradeRouter; tokens: TokenService; relayTokens: RelayTokens; credits: CreditService | undefined; logger: Logger },
): RelayGateway {
  const hb = config.topology.heartbeatIntervalMs;
  const development = config.mode === 'development';
  return new RelayGateway(
    deps.upgrades,
    {
      // Frequent pings catch a silent relay quickly (its viewers move, no new traffic); it is only cut
      // off later, so that a link stalling for a moment (TCP retransmitting) does not churn the tree.
      pingIntervalMs: Math.max(100, Math.floor(hb / 4)),
      suspectAfterMs: Math.max(1500, hb * 1.5),
      deadAfterMs: Math.max(5000, hb * 5, config.topology.nodeTtlMs + hb),
      maxConnections: 10_000,
      maxMessageBytes: config.signalling.maxMessageBytes * 4,
      rateLimitPerSec: config.signalling.rateLimitPerSec * 4,
      requestTimeoutMs: config.signalling.requestTimeoutMs,
      probeTimeoutMs: config.topology.probeTimeoutMs,
      registerTimeoutMs: config.topology.registerTimeoutMs,
      heartbeatIntervalMs: hb,
      addressPolicy: config.topology.relayAddresses === 'auto' ? (development ? 'any' : 'public') : config.topology.relayAddresses,
      trustProxy: config.http.trustProxy,
      uploadTestMaxKbps: config.topology.uploadTestMaxKbps,
    },
    {
      controller: deps.parts.controller,
      tokens: deps.tokens,
      router: deps.parts.router,
      logger: deps.logger,
      relayTokens: deps.relayTokens,
      ...(deps.credits ? { credits: deps.credits } : {}),
    },
  );
}

/**
 * The origin's way to the controller: in process when this process has the controller role,
 * otherwise over `/control` of `origin.controllerUrl`, with a token the origin makes itself from
 * the deployment secret it shares with the controller.
 */
export function originControlPlane(
  config: Readonly<CascadeConfig>,
  deps: { logger: Logger; tokens: TokenService; parts: ControllerParts | undefined; publicUrl: string; meter: () => TrafficMeter | undefined },
): (node: MediaNode, tickets: TicketVerifier) => ControlPlane {
  const capacity = originCapacity(config.origin.maxViewers, config.origin.maxChildRelays);
  return (node, tickets) => {
    if (deps.parts) {
      return new LocalControlPlane(
        {
          id: node.id,
          kind: 'origin',
          volunteer: false,
          owner: 'origin',
          url: deps.publicUrl,
          mediaIp: node.pipeListenIp.announcedIp,
          // The port the operator set (0: one the OS picks per worker, not known here).
          ...(config.mediasoup.mediaPort > 0 ? { mediaPort: config.mediasoup.mediaPort } : {}),
          capacity,
          registeredAt: Date.now(),
        },
        { controller: deps.parts.controller, router: deps.parts.router, logger: deps.logger },
      );
    }
    const remote = new RemoteControlPlane(
      {
        controllerUrl: config.origin.controllerUrl,
        token: deps.tokens.issue({ scope: ['origin'], sub: node.id }, 365 * 24 * 3600),
        nodeId: node.id,
        timeoutMs: config.signalling.requestTimeoutMs,
        maxViewers: config.origin.maxViewers,
        heartbeatIntervalMs: config.topology.heartbeatIntervalMs,
        announcement: async () => {
          const check = await node.mediaCheck();
          return { mediaIp: node.pipeListenIp.announcedIp, mediaPort: check.mediaPort, probe: { ufrag: check.ufrag, pwd: check.pwd }, probePort: check.mediaPort, capacity, software: 'cascade-origin/0.2.0' };
        },
      },
      {
        logger: deps.logger,
        handlers: { carried: () => { const m = deps.meter(); return m ? nodeSnapshot(node, m).streams : []; } },
      },
    );
    remote.on('registered', (_id, key) => tickets.setPublicKey(key));
    return remote;
  };
}

function readTicketKey(file: string): { privateKey: string; publicKey: string } {
  const privateKey = readFileSync(file, 'utf8');
  const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicKey };
}
