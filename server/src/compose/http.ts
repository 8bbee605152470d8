import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '@cascade/protocol';
import { GuardedHttpServer, UpgradeRouter } from '@cascade/protocol/node';
import { publicHttpUrl, type CascadeConfig } from '@cascade/config';
import type { AccountService, CreditService, RevocationList, TokenService, TopologyController } from '@cascade/controller';
import { registerHttpMetrics } from '@cascade/sfu';
import { accountsRouter } from '../http/accountsApi.js';
import { apiRouter, errorHandler, type ApiDeps } from '../http/api.js';
import { webDemoRouter } from '../http/webDemo.js';

/** The process's one HTTP server, listening: the express app, WebSocket upgrades, its addresses. */
export interface HttpFront {
  app: express.Express;
  server: Server;
  upgrades: UpgradeRouter;
  /** The address it listens on (http.host, or its default). */
  host: string;
  port: number;
  /** What clients are told (http.publicUrl, or derived from host and port). */
  publicUrl: string;
  /** Where this machine reaches it (http://host:port, loopback for a wildcard host). */
  url: string;
  close(): Promise<void>;
}

/** The guarded HTTP server, listening before anything is mounted (the port is known only after listen() when 0 was asked for: tests). */
export async function listenHttp(config: Readonly<CascadeConfig>, registry: Registry, deps: { logger: Logger }): Promise<HttpFront> {
  const app = express();
  app.disable('x-powered-by');
  // Behind a reverse proxy, the client's address (per-address limits) is the one it forwarded.
  app.set('trust proxy', [...config.http.trustProxy]);
  const http = new GuardedHttpServer(app, config.http, deps);
  registerHttpMetrics(registry, http);
  const server = http.server;
  const upgrades = new UpgradeRouter(server);
  // Only this machine unless told otherwise: a development run hands out broadcast tokens.
  const host = config.http.host || '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.http.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    app,
    server,
    upgrades,
    host,
    port,
    publicUrl: publicHttpUrl({ ...config, http: { ...config.http, host } }, port),
    url: `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The API (accounts when credits run here), the web demo, then the error handler; after the media front ends. */
export function mountRoutes(
  front: HttpFront,
  config: Readonly<CascadeConfig>,
  deps: {
    logger: Logger;
    registry: Registry;
    tokens: TokenService;
    controller: TopologyController | undefined;
    accounts: { accounts: AccountService | undefined; credits: CreditService; revocations: RevocationList } | undefined;
    health: ApiDeps['health'];
  },
): void {
  const { app } = front;
  const log = deps.logger;
  if (deps.accounts) app.use(accountsRouter({ ...deps.accounts, tokens: deps.tokens, logger: log, publicUrl: front.publicUrl }));
  app.use(
    apiRouter({
      ...(deps.controller ? { controller: deps.controller } : {}),
      registry: deps.registry,
      logger: log,
      trustProxy: config.http.trustProxy,
      tokens: deps.tokens,
      ...(config.mode === 'development' ? { devTokens: { tokens: deps.tokens, ttlSec: config.auth.devTokenTtlSec } } : {}),
      health: deps.health,
    }),
  );
  if (config.webDemo.enabled) app.use(webDemoRouter({ publicUrl: config.http.publicUrl }));
  app.use(errorHandler(log));
}
