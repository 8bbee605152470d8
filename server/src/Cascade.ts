import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublicKey } from 'node:crypto';
import express from 'express';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from '@cascade/protocol';
import { UpgradeRouter } from '@cascade/protocol/node';
import { announcedAddress, publicHttpUrl, type CascadeConfig } from '@cascade/config';
import {
  MemoryTopologyStore,
  RedisTopologyStore,
  RelayGateway,
  TokenService,
  TopologyController,
  type TopologyStore,
} from '@cascade/controller';
import { registerNodeMetrics } from '@cascade/sfu';
import { apiRouter, errorHandler } from './http/api.js';
import { webDemoRouter } from './http/webDemo.js';
import { startMediaFrontEnds } from './mediaFrontEnds.js';
import { OriginNode } from './origin/OriginNode.js';

export interface CascadeServer {
  /** Base URL this process listens on (http://host:port). */
  readonly url: string;
  readonly port: number;
  readonly controller: TopologyController;
  readonly origin: OriginNode | undefined;
  readonly gateway: RelayGateway | undefined;
  readonly development: boolean;
  close(): Promise<void>;
}

/**
 * The composition root of a `server` process: store, controller, origin media node, relay
 * gateway, HTTP API and web demo, as the config's roles ask. Resolves once it listens.
 */
export async function startCascade(config: Readonly<CascadeConfig>, deps: { logger: Logger }): Promise<CascadeServer> {
  const log = deps.logger;
  const development = config.mode === 'development';
  let secret = config.auth.secret;
  if (development) {
    log.warn(
      { tokenSecret: secret ? 'configured' : 'generated for this run' },
      'DEVELOPMENT MODE: the demo hands out broadcast tokens to anyone (/api/dev/token). Set mode=production and auth.secret for real use.',
    );
  }
  // Only possible in development: production refuses to start without a secret (config validation).
  if (!secret) secret = randomBytes(32).toString('hex');
  const tokens = new TokenService(secret);

  // K also bounds the tree edges heartbeats restore after the store lost them.
  const storeOptions = { maxChildren: config.topology.maxChildren };
  const store: TopologyStore = config.redis.url
    ? await RedisTopologyStore.connect({ url: config.redis.url, ...storeOptions }, { logger: log })
    : new MemoryTopologyStore(storeOptions);
  log.info({ store: store.kind }, 'topology store ready');

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
    },
    { store, logger: log, tokens, ...(ticketKey ? { ticketKey } : {}) },
  );
  controller.start();

  const registry = new Registry();
  registry.setDefaultLabels({ node: config.nodeId, role: config.roles.join('+') });
  collectDefaultMetrics({ register: registry, prefix: 'cascade_' });
  const placements = new Counter({
    name: 'cascade_controller_placements_total',
    help: 'Viewer placements decided by this controller instance',
    labelNames: ['attached'] as const,
    registers: [registry],
  });
  controller.observer.on('placement', (_s, _n, attached) => placements.inc({ attached: String(attached) }));
  const reparents = new Counter({ name: 'cascade_controller_reparents_total', help: 'Relays moved to a new parent', registers: [registry] });
  controller.observer.on('reparent', () => reparents.inc());

  const app = express();
  app.disable('x-powered-by');
  const server = http.createServer(app);
  const upgrades = new UpgradeRouter(server);

  const listenIps = config.mediasoup.listenIps.map((l) => ({ ip: l.ip, announcedIp: announcedAddress(l) }));
  // The port is known only after listen() when 0 was asked for (tests): listen first.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.http.port, config.http.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const publicUrl = publicHttpUrl(config, port);

  let gateway: RelayGateway | undefined;
  if (config.roles.includes('controller')) {
    gateway = new RelayGateway(
      upgrades,
      {
        // Frequent pings catch a silent relay quickly (no new traffic from then); it is only cut off
        // later, so that a link stalling for a moment (TCP retransmitting) does not churn the tree.
        pingIntervalMs: Math.max(100, Math.floor(config.topology.heartbeatIntervalMs / 4)),
        suspectAfterMs: Math.max(1500, config.topology.heartbeatIntervalMs * 1.5),
        deadAfterMs: Math.max(5000, config.topology.heartbeatIntervalMs * 5, config.topology.nodeTtlMs + config.topology.heartbeatIntervalMs),
        maxConnections: 10_000,
        maxMessageBytes: config.signalling.maxMessageBytes * 4,
        rateLimitPerSec: config.signalling.rateLimitPerSec * 4,
        requestTimeoutMs: config.signalling.requestTimeoutMs,
        probeTimeoutMs: config.topology.probeTimeoutMs,
        heartbeatIntervalMs: config.topology.heartbeatIntervalMs,
      },
      { controller, tokens, logger: log },
    );
    const gw = gateway;
    new Gauge({ name: 'cascade_controller_relays', help: 'Relays connected to this controller instance', registers: [registry], collect() { this.set(gw.relayCount); } });
  }

  let origin: OriginNode | undefined;
  if (config.roles.includes('origin')) {
    origin = await OriginNode.create(
      {
        media: {
          id: config.nodeId,
          publicUrl,
          listenIps,
          iceServers: config.iceServers.map((s) => ({ ...s })),
          mediasoup: { ...config.mediasoup },
          signalling: { ...config.signalling },
        },
        publisher: {
          maxStreams: config.origin.maxStreams,
          reconnectGraceMs: config.origin.reconnectGraceMs,
          keyFrameRequestDelayMs: config.origin.keyFrameRequestDelayMs,
          viewerCountIntervalMs: 2000,
        },
        maxViewers: config.origin.maxViewers,
        maxChildRelays: config.origin.maxChildRelays,
        heartbeatIntervalMs: config.topology.heartbeatIntervalMs,
      },
      { logger: log, upgrades, controller, tokens },
    );
    registerNodeMetrics(registry, origin.node, origin.meter);
  }
  // WHIP, plain RTP ingest, recordings: HTTP front ends of the origin's media node.
  const frontEnds = origin ? await startMediaFrontEnds(config, { app, origin, tokens, registry, logger: log }) : undefined;

  let state: 'running' | 'closing' | 'closed' = 'running';
  app.use(
    apiRouter({
      controller,
      registry,
      logger: log,
      ...(development ? { devTokens: { tokens, ttlSec: config.auth.devTokenTtlSec } } : {}),
      health: () => ({
        ok: state === 'running' && (!origin || origin.node.pool.workers.length > 0),
        detail: {
          node: config.nodeId,
          roles: config.roles,
          mode: config.mode,
          store: store.kind,
          workers: origin?.node.pool.workers.length ?? 0,
          streams: origin?.node.streams.length ?? 0,
          relays: gateway?.relayCount ?? 0,
        },
      }),
    }),
  );
  if (config.webDemo.enabled) app.use(webDemoRouter({ publicUrl: config.http.publicUrl }));
  app.use(errorHandler(log));

  log.info({ url: publicUrl, roles: config.roles, mode: config.mode, store: store.kind, listenIps }, 'cascade listening');

  return {
    url: `http://${config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host}:${port}`,
    port,
    controller,
    origin,
    gateway,
    development,
    async close() {
      if (state !== 'running') return;
      state = 'closing';
      await gateway?.close();
      await frontEnds?.close();
      await origin?.close();
      controller.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await store.close();
      state = 'closed';
      log.info({}, 'cascade stopped');
    },
  };
}

function readTicketKey(file: string): { privateKey: string; publicKey: string } {
  const privateKey = readFileSync(file, 'utf8');
  const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicKey };
}
