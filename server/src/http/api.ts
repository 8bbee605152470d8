import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import { CascadeError, StreamId, isValid, toCascadeError, type Logger, type StreamSummary } from '@cascade/protocol';
import { clientAddress, type StreamRecord, type TokenService, type TopologyController } from '@cascade/controller';

export interface ApiDeps {
  /** Absent in an origin without the controller role: the stream API lives on the controller. */
  controller?: TopologyController;
  /** Proxies whose X-Forwarded-For names the client. */
  trustProxy: readonly string[];
  registry: Registry;
  logger: Logger;
  /** Present in development mode only: lets the demo obtain broadcast tokens by itself. */
  devTokens?: { tokens: TokenService; ttlSec: number };
  /** Checks operator tokens (Authorization: Bearer …): an operator sees volunteers' addresses in /api/nodes. */
  tokens?: TokenService;
  health: () => { ok: boolean; detail: Record<string, unknown> };
}

/** How long a /api/streams answer is reused (ms). */
const LIST_CACHE_MS = 1000;

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

  r.get('/healthz', (_req, res) => {
    const h = deps.health();
    res.status(h.ok ? 200 : 503).json({ status: h.ok ? 'ok' : 'unavailable', ...h.detail });
  });

  r.get('/metrics', async (_req, res) => {
    res.set('Content-Type', deps.registry.contentType).send(await deps.registry.metrics());
  });

  // What a relay needs to know of itself before it can announce its media: the address it is seen from.
  r.get('/api/whoami', (req, res) => {
    res.json({ address: clientAddress(req, deps.trustProxy) });
  });

  if (deps.devTokens) {
    const { tokens, ttlSec } = deps.devTokens;
    r.get('/api/dev/token', (_req, res) => {
      // Development mode only: each page gets its own identity so that "who owns this stream" still means something.
      const sub = `dev-${randomBytes(6).toString('hex')}`;
      res.json({ token: tokens.issue({ scope: ['broadcast'], sub }, ttlSec), expiresIn: ttlSec, development: true });
    });
  }

  const controller = deps.controller;
  if (!controller) {
    r.use('/api', () => {
      throw new CascadeError('CASCADE_ERR_CONTROLLER_UNAVAILABLE', 'this process has no controller: ask the deployment\'s public address');
    });
    return r;
  }

  // The home page polls this, anyone may: one store read per LIST_CACHE_MS at most, however many ask.
  const lists = new Map<boolean, { at: number; body: Promise<{ streams: StreamSummary[] }> }>();
  const listStreams = (all: boolean) => {
    const cached = lists.get(all);
    if (cached && Date.now() - cached.at < LIST_CACHE_MS) return cached.body;
    const body = controller.listStreams({ ended: all }).then((streams) => {
      streams.sort((a, b) => b.createdAt - a.createdAt);
      return { streams: streams.map(summary) };
    });
    lists.set(all, { at: Date.now(), body });
    body.catch(() => lists.delete(all));
    return body;
  };
  r.get('/api/streams', async (req, res) => {
    res.json(await listStreams(req.query.all === '1'));
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
    const [tree, all] = await Promise.all([controller.topology(id), controller.listNodes()]);
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
      /** Relays the stream's origin caught altering or withholding it (demoted, token revoked). */
      removed: controller.integrity.condemnedFor(id),
    });
  });

  r.get('/api/nodes', async (req, res) => {
    // A volunteer's address is its home: only the operator sees it (viewers reach it for media only).
    const auth = req.headers.authorization ?? '';
    const operator = !!deps.tokens && auth.startsWith('Bearer ') && (deps.tokens.verify(auth.slice(7), 'operator'), true);
    const nodes = await controller.listNodes();
    res.json({
      nodes: nodes.map((n) => ({
        id: n.id,
        kind: n.kind,
        volunteer: n.volunteer,
        status: n.status,
        alive: n.alive,
        url: n.volunteer && !operator ? null : n.url,
        mediaIp: n.volunteer && !operator ? null : n.mediaIp,
        mediaPort: n.volunteer && !operator ? null : (n.mediaPort ?? null),
        capacity: n.capacity,
        load: n.load,
        stats: n.stats ?? null,
      })),
    });
  });

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
      : clientHttpError(err) ?? toCascadeError(err);
    if (e.code === 'CASCADE_ERR_INTERNAL') logger.error({ err: e.cause ?? e, path: req.path }, 'http request failed');
    else logger.debug({ code: e.code, path: req.path }, 'http request refused');
    if (res.headersSent) return;
    res.status(e.status).json({ statusCode: e.status, code: e.code, message: e.message });
  };
}

/**
 * The router's and body parsers' own 4xx errors (a malformed %-escape in the path is a URIError
 * with status 400): the client's fault, never INTERNAL.
 */
function clientHttpError(err: unknown): CascadeError | undefined {
  const status = (err as { status?: unknown })?.status;
  if (err instanceof URIError || (typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: unknown }).expose === true)) {
    return new CascadeError('CASCADE_ERR_HTTP_BAD_REQUEST', err instanceof URIError ? 'malformed %-escape in the URL' : (err as Error).message);
  }
  return undefined;
}
