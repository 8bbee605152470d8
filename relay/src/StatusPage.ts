import type { AddressInfo } from 'node:net';
import express from 'express';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from '@cascade/protocol';
import { GuardedHttpServer, rejectUpgrade, type HttpServerLimits } from '@cascade/protocol/node';
import { registerHttpMetrics, registerNodeMetrics } from '@cascade/sfu';
import type { RelayNode } from './RelayNode.js';

export type StatusPageOptions = { host: string; port: number } & HttpServerLimits;

/**
 * A relay's own HTTP page: /healthz and /metrics, for the volunteer and the operator's scraper
 * (nobody else needs it). Part of the process around a RelayNode (startRelay), not of the node:
 * the media classes never import prom-client. It answers whoever can reach it with the same
 * deadlines and per-address cap as any server of ours, and has no WebSocket of any kind (a
 * relay's sessions come through the controller).
 */
export class StatusPage {
  /** Base URL, e.g. http://127.0.0.1:8090. */
  readonly url: string;
  readonly registry: Registry;
  readonly #server: GuardedHttpServer;
  #closed = false;

  static async listen(relay: RelayNode, options: StatusPageOptions, deps: { logger: Logger }): Promise<StatusPage> {
    const registry = new Registry();
    registry.setDefaultLabels({ node: relay.node.id, role: 'relay' });
    collectDefaultMetrics({ register: registry, prefix: 'cascade_' });
    registerNodeMetrics(registry, relay.node, relay.meter);
    const app = healthApp(relay, registry);
    const server = new GuardedHttpServer((req, res) => app(req, res), options, deps);
    registerHttpMetrics(registry, server);
    server.server.on('upgrade', (_req, socket) => rejectUpgrade(socket, 'CASCADE_ERR_HTTP_NOT_FOUND', 'a relay has no signalling endpoint'));
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(options.port, options.host, () => resolve());
    });
    const port = (server.server.address() as AddressInfo).port;
    return new StatusPage(server, registry, `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`);
  }

  private constructor(server: GuardedHttpServer, registry: Registry, url: string) {
    this.#server = server;
    this.registry = registry;
    this.url = url;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const s = this.#server.server;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

function healthApp(relay: RelayNode, registry: Registry): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    const ok = !relay.closed && relay.node.pool.workers.length > 0;
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'unavailable',
      node: relay.control.nodeId ?? null,
      controller: relay.control.connected ? (relay.control.ready ? 'ready' : 'probing') : 'disconnected',
      draining: relay.draining,
      heartbeatIntervalMs: relay.heartbeatPeriodMs,
      streams: relay.node.streams.length,
      viewers: relay.node.streams.reduce((n, s) => n + s.viewerCount, 0),
      sessions: relay.control.hostedCount,
    });
  });
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', registry.contentType).send(await registry.metrics());
  });
  return app;
}
