import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from '@cascade/protocol';
import { GuardedHttpServer, UpgradeRouter } from '@cascade/protocol/node';
import { announcedAddress, publicHttpUrl, type CascadeConfig } from '@cascade/config';
import { RelayGateway, type AccountService, type CreditService, type RevocationList, type TopologyController } from '@cascade/controller';
import { registerHttpMetrics, registerIntegrityMetrics, registerNodeMetrics } from '@cascade/sfu';
import { registerAccountMetrics } from './accountMetrics.js';
import { startCredits, startIdentity } from './accounts.js';
import { accountsRouter } from './http/accountsApi.js';
import { apiRouter, errorHandler } from './http/api.js';
import { webDemoRouter } from './http/webDemo.js';
import { startMediaFrontEnds } from './mediaFrontEnds.js';
import { OriginNode } from './origin/OriginNode.js';
import { originControlPlane, startController, type ControllerParts } from './compose/controlPlane.js';
import { registerControllerMetrics } from './compose/metrics.js';

export interface CascadeServer {
  /** Base URL this process listens on (http://host:port). */
  readonly url: string;
  /** The address it listens on (http.host, or its default). */
  readonly host: string;
  readonly port: number;
  readonly controller: TopologyController | undefined;
  readonly origin: OriginNode | undefined;
  readonly gateway: RelayGateway | undefined;
  readonly development: boolean;
  /** Accounts and credits live with the controller (absent in an origin without it, or with accounts off). */
  readonly accounts: AccountService | undefined;
  readonly credits: CreditService | undefined;
  readonly revocations: RevocationList;
  close(): Promise<void>;
}

/**
 * The composition root of a `server` process: controller (store, bus, tunnels, relay gateway),
 * origin media node, HTTP API and web demo, as the config's roles ask. Resolves once it listens.
 */
export async function startCascade(config: Readonly<CascadeConfig>, deps: { logger: Logger }): Promise<CascadeServer> {
  const log = deps.logger;
  const development = config.mode === 'development';
  if (development) {
    log.warn(
      { tokenSecret: config.auth.secret ? 'configured' : 'generated for this run' },
      'DEVELOPMENT MODE: the demo hands out broadcast tokens to anyone (/api/dev/token). Set mode=production and auth.secret for real use.',
    );
  }
  // Only possible in development: production refuses to start without a secret (config validation).
  const secret = config.auth.secret || randomBytes(32).toString('hex');
  // Accounts, the ledger and revocations first: every token check asks the revocation list.
  const identity = await startIdentity(config, { secret, logger: log });
  const { tokens } = identity;
  const parts: ControllerParts | undefined = config.roles.includes('controller') ? await startController(config, { logger: log, tokens }) : undefined;
  const credits = parts ? startCredits(config, identity, { topology: parts.store, logger: log }) : undefined;

  const registry = new Registry();
  registry.setDefaultLabels({ node: config.nodeId, role: config.roles.join('+') });
  collectDefaultMetrics({ register: registry, prefix: 'cascade_' });

  if (credits) registerAccountMetrics(registry, { accounts: identity.accounts, credits, revocations: identity.revocations });

  const app = express();
  app.disable('x-powered-by');
  // Behind a reverse proxy, the client's address (per-address limits) is the one it forwarded.
  app.set('trust proxy', [...config.http.trustProxy]);
  const http = new GuardedHttpServer(app, config.http, { logger: log });
  registerHttpMetrics(registry, http);
  const server = http.server;
  const upgrades = new UpgradeRouter(server);

  // Only this machine unless told otherwise: a development run hands out broadcast tokens.
  const host = config.http.host || '127.0.0.1';
  // The port is known only after listen() when 0 was asked for (tests): listen first.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.http.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const publicUrl = publicHttpUrl({ ...config, http: { ...config.http, host } }, port);

  let gateway: RelayGateway | undefined;
  if (parts) {
    const hb = config.topology.heartbeatIntervalMs;
    gateway = new RelayGateway(
      upgrades,
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
      { controller: parts.controller, tokens, router: parts.router, logger: log, relayTokens: identity.relayTokens, ...(credits ? { credits } : {}) },
    );
    registerControllerMetrics(registry, parts, gateway);
  }

  let origin: OriginNode | undefined;
  if (config.roles.includes('origin')) {
    const listenIps = config.mediasoup.listenIps.map((l) => ({ ip: l.ip, announcedIp: announcedAddress(l) }));
    origin = await OriginNode.create(
      {
        media: {
          id: config.nodeId,
          listenIps,
          iceServers: config.iceServers.map((s) => ({ ...s })),
          mediasoup: { ...config.mediasoup },
          signalling: { ...config.signalling },
        },
        ...(config.integrity.enabled ? { integrity: { batchIntervalMs: config.integrity.batchIntervalMs, probeMs: config.integrity.probeMs } } : {}),
        publisher: {
          maxStreams: config.origin.maxStreams,
          maxStreamsPerOwner: config.origin.maxStreamsPerOwner,
          reconnectGraceMs: config.origin.reconnectGraceMs,
          keyFrameRequestDelayMs: config.origin.keyFrameRequestDelayMs,
          viewerCountIntervalMs: 2000,
        },
        ...(credits && parts
          ? {
              receipts: {
                intervalMs: config.credits.receiptIntervalMs,
                onPlaced: (session, streamId, nodeId) => {
                  credits.viewerPlaced({ session: session.id, streamId, nodeId }).catch((err) => log.warn({ err }, 'cannot record a placement for credits'));
                },
                onReceipt: async (session, receipt) => {
                  // One account of what the node serving this session delivered: for its health (only
                  // about the node the session really is on), and for credits (which check that too).
                  if (receipt.nodeId === (session.forwardedTo ?? config.nodeId)) parts.controller.viewerReport(session.id, receipt.nodeId, receipt);
                  return (await credits.receipt(session.id, receipt)).counted > 0;
                },
              },
            }
          : {}),
      },
      {
        logger: log,
        upgrades,
        tokens,
        ...(parts ? { ticketPublicKey: parts.controller.ticketPublicKey } : {}),
        control: originControlPlane(config, { logger: log, tokens, parts, publicUrl, meter: () => origin?.meter }),
      },
    );
    registerNodeMetrics(registry, origin.node, origin.meter);
    if (origin.integrity) registerIntegrityMetrics(registry, origin.integrity);
  }
  // WHIP, plain RTP ingest, recordings: HTTP front ends of the origin's media node.
  const frontEnds = origin ? await startMediaFrontEnds(config, { app, origin, tokens, registry, logger: log }) : undefined;

  let state: 'running' | 'closing' | 'closed' = 'running';
  const o = origin;
  if (credits) app.use(accountsRouter({ accounts: identity.accounts, credits, tokens, revocations: identity.revocations, logger: log, publicUrl }));
  app.use(
    apiRouter({
      ...(parts ? { controller: parts.controller } : {}),
      registry,
      logger: log,
      trustProxy: config.http.trustProxy,
      tokens,
      ...(development ? { devTokens: { tokens, ttlSec: config.auth.devTokenTtlSec } } : {}),
      health: () => ({
        ok: state === 'running' && (!o || o.node.pool.workers.length > 0),
        detail: {
          node: config.nodeId,
          roles: config.roles,
          mode: config.mode,
          store: parts?.store.kind ?? 'remote',
          workers: o?.node.pool.workers.length ?? 0,
          streams: o?.node.streams.length ?? 0,
          relays: gateway?.relayCount ?? 0,
        },
      }),
    }),
  );
  if (config.webDemo.enabled) app.use(webDemoRouter({ publicUrl: config.http.publicUrl }));
  app.use(errorHandler(log));

  log.info({ url: publicUrl, roles: config.roles, mode: config.mode, store: parts?.store.kind ?? 'remote' }, 'cascade listening');

  return {
    url: `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    controller: parts?.controller,
    origin,
    gateway,
    development,
    accounts: identity.accounts,
    credits,
    revocations: identity.revocations,
    async close() {
      if (state !== 'running') return;
      state = 'closing';
      await gateway?.close();
      await frontEnds?.close();
      await origin?.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      credits?.close();
      await parts?.close();
      await identity.close();
      state = 'closed';
      log.info({}, 'cascade stopped');
    },
  };
}
