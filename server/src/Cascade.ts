import { randomBytes } from 'node:crypto';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from '@cascade/protocol';
import type { CascadeConfig } from '@cascade/config';
import {
  registerAccountMetrics,
  registerControllerMetrics,
  type AccountService,
  type CreditService,
  type RelayGateway,
  type RevocationList,
  type TopologyController,
} from '@cascade/controller';
import { registerIntegrityMetrics, registerNodeMetrics } from '@cascade/sfu';
import { startCredits, startIdentity } from './accounts.js';
import { startController, startGateway, type ControllerParts } from './compose/controlPlane.js';
import { listenHttp, mountRoutes } from './compose/http.js';
import { startOrigin } from './compose/origin.js';
import { startMediaFrontEnds } from './mediaFrontEnds.js';
import type { OriginNode } from './origin/OriginNode.js';

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
 * The composition root of a `server` process: identity (tokens, accounts, ledger), controller
 * (store, bus, tunnels, relay gateway), HTTP server, origin media node and its front ends, API
 * and web demo, as the config's roles ask; each part is built in compose/. Resolves once it listens.
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

  const front = await listenHttp(config, registry, { logger: log });
  const gateway = parts ? startGateway(config, { parts, upgrades: front.upgrades, tokens, relayTokens: identity.relayTokens, credits, logger: log }) : undefined;
  if (parts && gateway) registerControllerMetrics(registry, { controller: parts.controller, router: parts.router, gateway });

  const origin = config.roles.includes('origin')
    ? await startOrigin(config, { logger: log, upgrades: front.upgrades, tokens, parts, credits, publicUrl: front.publicUrl })
    : undefined;
  if (origin) registerNodeMetrics(registry, origin.node, origin.meter);
  if (origin?.integrity) registerIntegrityMetrics(registry, origin.integrity);
  // WHIP, plain RTP ingest, recordings: HTTP front ends of the origin's media node.
  const frontEnds = origin ? await startMediaFrontEnds(config, { app: front.app, origin, tokens, registry, logger: log }) : undefined;

  let state: 'running' | 'closing' | 'closed' = 'running';
  mountRoutes(front, config, {
    logger: log,
    registry,
    tokens,
    controller: parts?.controller,
    accounts: credits ? { accounts: identity.accounts, credits, revocations: identity.revocations } : undefined,
    health: () => ({
      ok: state === 'running' && (!origin || origin.node.pool.workers.length > 0),
      detail: {
        node: config.nodeId,
        roles: config.roles,
        mode: config.mode,
        store: parts?.store.kind ?? 'remote',
        workers: origin?.node.pool.workers.length ?? 0,
        streams: origin?.node.streams.length ?? 0,
        relays: gateway?.relayCount ?? 0,
      },
    }),
  });
  log.info({ url: front.publicUrl, roles: config.roles, mode: config.mode, store: parts?.store.kind ?? 'remote' }, 'cascade listening');

  return {
    url: front.url,
    host: front.host,
    port: front.port,
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
      await front.close();
      credits?.close();
      await parts?.close();
      await identity.close();
      state = 'closed';
      log.info({}, 'cascade stopped');
    },
  };
}
