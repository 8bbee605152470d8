import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import { CascadeError, StreamId, isValid, toCascadeError, type Logger, type StreamSummary } from '@cascade/protocol';
import type { StreamRecord, TokenService, TopologyController } from '@cascade/controller';

export interface ApiDeps {
  controller: TopologyController;
  registry: Registry;
  logger: Logger;
  /** Present in development mode only: lets the demo obtain broadcast tokens by itself. */
  devTokens?: { tokens: TokenService; ttlSec: number };
  health: () => { ok: boolean; detail: Record<string, unknown> };
}

function summary(s: StreamRecord & { viewers: number }): StreamSummary {
  return {
    id: s.id,
    title: s.title,
    state: s.state,
    createdAt: s.createdAt,
    ...(s.endedAt !== undefined ? { endedAt: s.endedAt } : {}),
    viewers: s.viewers,
  };
}

/** The HTTP API: streams, topology, health, metrics, and (development only) demo tokens. */
export function apiRouter(deps: ApiDeps): express.Router {
  const r = express.Router();
  const { controller } = deps;

  r.get('/healthz', (_req, res) => {
    const h = deps.health();
    res.status(h.ok ? 200 : 503).json({ status: h.ok ? 'ok' : 'unavailable', ...h.detail });
  });

  r.get('/metrics', async (_req, res) => {
    res.set('Content-Type', deps.registry.contentType).send(await deps.registry.metrics());
  });

  r.get('/api/streams', async (req, res) => {
    const all = req.query.all === '1';
    const streams = (await controller.listStreams()).filter((s) => all || s.state !== 'ended');
    streams.sort((a, b) => b.createdAt - a.createdAt);
    res.json({ streams: streams.map(summary) });
  });

  const streamId = (req: Request): string => {
    const id = String(req.params.id);
    if (!isValid(StreamId, id)) throw new CascadeError('CASCADE_ERR_STREAM_INVALID_ID', 'ids are 3-64 of A-Z a-z 0-9 _ -');
    return id;
  };

  r.get('/api/streams/:id', async (req, res) => {
    const s = await controller.getStream(streamId(req));
    res.json(summary({ ...s, viewers: await controller.viewerCount(s.id) }));
  });

  r.get('/api/streams/:id/topology', async (req, res) => {
    const id = streamId(req);
    // Volunteers are shown under their name (their relay token's subject: the account name
    // for tokens from the Volunteer page).
    const [tree, all] = await Promise.all([controller.topology(id), controller.store.listNodes(Date.now())]);
    const owners = new Map(all.filter((n) => n.volunteer).map((n) => [n.id, n.owner]));
    const nodes = tree.map((n) => (owners.has(n.id) ? { ...n, name: owners.get(n.id)! } : n));
    const viewers = nodes.reduce((n, x) => n + x.viewers, 0);
    const byRelays = nodes.filter((n) => n.kind === 'relay').reduce((n, x) => n + x.viewers, 0);
    res.json({
      streamId: id,
      viewers,
      depth: nodes.reduce((d, n) => Math.max(d, n.depth), 0),
      /** Share of the audience served by relays rather than the origin, 0..1. */
      relayShare: viewers > 0 ? byRelays / viewers : 0,
      nodes,
    });
  });

  r.get('/api/nodes', async (_req, res) => {
    const nodes = await controller.store.listNodes(Date.now());
    res.json({
      nodes: nodes.map((n) => ({
        id: n.id,
        kind: n.kind,
        volunteer: n.volunteer,
        status: n.status,
        alive: n.alive,
        url: n.url,
        capacity: n.capacity,
        load: n.load,
        stats: n.stats ?? null,
      })),
    });
  });

  if (deps.devTokens) {
    const { tokens, ttlSec } = deps.devTokens;
    r.get('/api/dev/token', (_req, res) => {
      // Development mode only: each page gets its own identity so that "who owns this stream" still means something.
      const sub = `dev-${randomBytes(6).toString('hex')}`;
      res.json({ token: tokens.issue({ scope: ['broadcast'], sub }, ttlSec), expiresIn: ttlSec, development: true });
    });
  }

  r.use('/api', (req) => {
    throw new CascadeError('CASCADE_ERR_HTTP_NOT_FOUND', req.path);
  });
  return r;
}

/** Coded JSON errors for every failure (fastify's shape: statusCode, code, message). */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const e = (err as { type?: string })?.type === 'entity.parse.failed'
      ? new CascadeError('CASCADE_ERR_PROTOCOL_MALFORMED', 'request body is not JSON')
      : toCascadeError(err);
    if (e.code === 'CASCADE_ERR_INTERNAL') logger.error({ err: e.cause ?? e, path: req.path }, 'http request failed');
    else logger.debug({ code: e.code, path: req.path }, 'http request refused');
    if (res.headersSent) return;
    res.status(e.status).json({ statusCode: e.status, code: e.code, message: e.message });
  };
}
