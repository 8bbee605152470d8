import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { collectDefaultMetrics, Registry } from 'prom-client';
import {
  CascadeError,
  MAX_VIEWER_DEPARTURES,
  TypedEmitter,
  type Logger,
  type NodeCapacity,
  type RelayParams,
} from '@cascade/protocol';
import { GuardedHttpServer, UpgradeRouter, type HttpServerLimits } from '@cascade/protocol/node';
import {
  MediaNode,
  PipeEgressService,
  TicketVerifier,
  TrafficMeter,
  TransportService,
  ViewerService,
  nodeSnapshot,
  registerHttpMetrics,
  registerNodeMetrics,
  type ControlPlane,
  type LocalStream,
  type MediaNodeOptions,
} from '@cascade/sfu';
import { ControlClient } from './ControlClient.js';
import { ParentLossReporter } from './ParentLossReporter.js';
import { PipeIngress } from './PipeIngress.js';
import { ProbeResponder } from './ProbeResponder.js';

export interface RelayNodeOptions {
  media: Omit<MediaNodeOptions, 'kind' | 'publicUrl'>;
  /** Where the signalling server listens, and its deadlines and per-address limit. */
  http: { host: string; port: number } & HttpServerLimits;
  /** URL viewers and children use; `{port}` is replaced by the bound port. */
  publicUrl: string;
  controllerUrl: string;
  token: string;
  capacity: NodeCapacity;
  /** Heartbeat period until the controller gives its own at registration (ms). */
  heartbeatIntervalMs: number;
  lingerMs: number;
  stallTimeoutMs: number;
  drainTimeoutMs: number;
  requestTimeoutMs: number;
}

export type RelayNodeEvents = {
  registered: [nodeId: string];
  ready: [nodeId: string];
  controllerlost: [];
  streamstart: [streamId: string, parentId: string];
  streamstop: [streamId: string];
  parentlost: [streamId: string, reason: string];
  fatal: [error: CascadeError];
  listenererror: [event: string, error: unknown];
};

/** How long a stream opened for a ticketed viewer waits for its assignment (ms). */
const PENDING_ASSIGNMENT_MS = 10_000;
/** How long a planned move waits for the new pipe's media before switching anyway (ms). */
const MOVE_MEDIA_WAIT_MS = 2000;

/**
 * A relay: a media node that pulls streams from the parent the controller assigns and
 * re-offers them to its viewers and child relays. Volunteers run it on their own machines;
 * it speaks only to the controller's authenticated API, never to Redis, and can pull only
 * what a signed pipe ticket allows.
 */
export class RelayNode extends TypedEmitter<RelayNodeEvents> {
  readonly node: MediaNode;
  readonly meter: TrafficMeter;
  readonly control: ControlClient;
  readonly registry: Registry;
  readonly url: string;
  readonly #options: RelayNodeOptions;
  readonly #log: Logger;
  readonly #server: http.Server;
  readonly #probe: ProbeResponder;
  readonly #ingress = new Map<string, PipeIngress>();
  /** Per stream, the latest assignment: a pull that fails after a newer one started is not reported. */
  readonly #assignments = new Map<string, number>();
  readonly #lostParents: ParentLossReporter;
  readonly #linger = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #left = new Map<string, number>();
  readonly #watched = new WeakSet<LocalStream>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Current heartbeat period (ms): ours until the controller gives its own. */
  #heartbeatMs: number;
  #lastTickAt = 0;
  #draining = false;
  #closed = false;

  static async create(options: RelayNodeOptions, deps: { logger: Logger }): Promise<RelayNode> {
    const app = express();
    app.disable('x-powered-by');
    const guarded = new GuardedHttpServer(app, options.http, deps);
    const server = guarded.server;
    const upgrades = new UpgradeRouter(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.http.port, options.http.host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const url = options.publicUrl.replace('{port}', String(port)).replace(/\/$/, '');
    const tickets = new TicketVerifier();
    let node: MediaNode;
    try {
      node = await MediaNode.create({ ...options.media, kind: 'relay', publicUrl: url }, { logger: deps.logger, upgrades, tickets });
    } catch (err) {
      server.close();
      throw err;
    }
    let relay: RelayNode | undefined;
    const { rtcMinPort, rtcMaxPort } = options.media.mediasoup;
    let probe: ProbeResponder;
    try {
      probe = await ProbeResponder.bind(options.media.listenIps[0]!.ip, { min: rtcMinPort, max: rtcMaxPort }, (nonce) => relay?.control.probeReceived(nonce), deps);
    } catch (err) {
      await node.close();
      server.close();
      throw err;
    }
    relay = new RelayNode(options, node, server, app, url, probe, tickets, deps.logger);
    registerHttpMetrics(relay.registry, guarded);
    return relay;
  }

  private constructor(
    options: RelayNodeOptions,
    node: MediaNode,
    server: http.Server,
    app: express.Express,
    url: string,
    probe: ProbeResponder,
    tickets: TicketVerifier,
    logger: Logger,
  ) {
    super();
    this.#options = options;
    this.#heartbeatMs = options.heartbeatIntervalMs;
    this.node = node;
    this.#server = server;
    this.#probe = probe;
    this.url = url;
    this.#log = logger.child({ component: 'RelayNode' });
    this.#lostParents = new ParentLossReporter({}, {
      logger,
      report: async (streamId, parentNodeId) => {
        await this.control.request('stream.parentLost', { streamId, parentNodeId });
      },
    });
    this.meter = new TrafficMeter(node, { logger });
    this.registry = new Registry();
    this.registry.setDefaultLabels({ node: node.id, role: 'relay' });
    collectDefaultMetrics({ register: this.registry, prefix: 'cascade_' });
    registerNodeMetrics(this.registry, node, this.meter);

    this.control = new ControlClient(
      {
        controllerUrl: options.controllerUrl,
        token: options.token,
        nodeId: options.media.id || undefined,
        timeoutMs: options.requestTimeoutMs,
        announcement: {
          url,
          mediaIp: node.pipeListenIp.announcedIp,
          probePort: probe.port,
          capacity: options.capacity,
          software: 'cascade-relay/0.1.0',
        },
      },
      {
        logger,
        handlers: {
          assign: (p) => this.#assign(p),
          carried: () => nodeSnapshot(node, this.meter).streams.filter((s) => s.parentNodeId !== null),
        },
      },
    );
    this.control.on('registered', (id, key, heartbeatMs) => {
      tickets.setPublicKey(key);
      this.#log.info({ nodeId: id, heartbeatMs }, 'registered with the controller');
      this.#followHeartbeat(heartbeatMs);
      this.safeEmit('registered', id);
    });
    this.control.on('ready', (id) => this.safeEmit('ready', id));
    this.control.on('disconnected', () => this.safeEmit('controllerlost'));
    this.control.on('fatal', (err) => this.safeEmit('fatal', err));

    node.control = this.#controlPlane();
    node
      .use(new TransportService(node))
      .use(new ViewerService(node, { iceServers: options.media.iceServers, streamFor: (id) => this.#streamForViewer(id) }))
      .use(new PipeEgressService(node));
    node.on('streamclose', (s) => {
      clearTimeout(this.#linger.get(s.id));
      this.#linger.delete(s.id);
      this.#lostParents.recovered(s.id);
      this.#assignments.delete(s.id);
      this.#ingress.get(s.id)?.close();
      this.#ingress.delete(s.id);
    });

    app.get('/healthz', (_req, res) => {
      const ok = !this.#closed && node.pool.workers.length > 0;
      res.status(ok ? 200 : 503).json({
        status: ok ? 'ok' : 'unavailable',
        node: this.control.nodeId ?? null,
        controller: this.control.connected ? (this.control.ready ? 'ready' : 'probing') : 'disconnected',
        draining: this.#draining,
        heartbeatIntervalMs: this.#heartbeatMs,
        streams: node.streams.length,
        viewers: node.streams.reduce((n, s) => n + s.viewerCount, 0),
      });
    });
    app.get('/metrics', async (_req, res) => {
      res.set('Content-Type', this.registry.contentType).send(await this.registry.metrics());
    });
  }

  get nodeId(): string | undefined {
    return this.control.nodeId;
  }
  get draining(): boolean {
    return this.#draining;
  }

  /** Register and start heartbeating; resolves with the node id (rejects if refused). */
  async start(): Promise<string> {
    this.#startHeartbeat();
    return this.control.start();
  }

  /**
   * Leave gracefully: no new placements, children moved by the controller, viewers asked to
   * move (make-before-break); resolves when they are gone or after drainTimeoutMs.
   */
  async drain(): Promise<void> {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    this.#log.info({}, 'draining');
    await this.control.request('node.drain', {}).catch((err) => this.#log.warn({ err }, 'controller not told about the drain'));
    for (const s of this.node.sessions) if (s.role === 'viewer') s.notify('node.draining', { reason: 'relay is leaving' });
    const deadline = Date.now() + this.#options.drainTimeoutMs;
    while (Date.now() < deadline && this.node.streams.some((s) => s.viewerCount > 0 || s.childCount > 0)) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const t of this.#linger.values()) clearTimeout(t);
    this.meter.stop();
    this.#lostParents.close();
    for (const i of this.#ingress.values()) i.close();
    this.#ingress.clear();
    this.control.close();
    this.#probe.close();
    await this.node.close();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  // ------------------------------------------------------------------ assignments

  async #assign({ stream: info, parent, ticket }: RelayParams<'stream.assign'>): Promise<void> {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_NODE_SHUTTING_DOWN');
    const current = this.#ingress.get(info.id);
    if (current && !current.closed && current.parentId === parent.nodeId) return; // already there
    const stream = this.node.stream(info.id) ?? this.node.openStream(info.id, { depth: 1, state: info.state, title: info.title, createdAt: info.createdAt });
    stream.title = info.title;
    this.#watchIdle(stream);
    const seq = (this.#assignments.get(info.id) ?? 0) + 1;
    this.#assignments.set(info.id, seq);
    // The controller has moved on: a loss report still waiting would name a parent it already replaced.
    this.#lostParents.cancel(info.id);
    let next: PipeIngress;
    try {
      next = await PipeIngress.open(
        this.node,
        { stream, parent, ticket, stallTimeoutMs: this.#options.stallTimeoutMs, timeoutMs: this.#options.requestTimeoutMs },
        { logger: this.#log },
      );
    } catch (err) {
      const code = err instanceof CascadeError ? err.code : 'unknown';
      // The parent refused, timed out or no longer has the stream. The tree says it feeds us, so
      // unless a newer assignment superseded this one the controller must hear it (and pick another).
      if (!this.#closed && !stream.closed && this.#assignments.get(info.id) === seq) {
        this.#log.warn({ err, code, streamId: info.id, parentId: parent.nodeId }, 'cannot pull the stream from the assigned parent; reporting it lost');
        this.#lostParents.lost(info.id, parent.nodeId);
      }
      throw new CascadeError('CASCADE_ERR_RELAY_PARENT_LOST', `cannot pull from ${parent.nodeId} (${code})`, { cause: err });
    }
    if (this.#closed || stream.closed) {
      next.close();
      return;
    }
    // Make-before-break: while the old parent still feeds us, switch only once the new pipe carries media.
    if (current && !current.closed) await next.waitForMedia(MOVE_MEDIA_WAIT_MS);
    if (next.closed) {
      // The new parent failed before taking over (its 'lost' came before anyone listened):
      // keep what still feeds us, and have the controller pick another parent.
      this.#log.warn({ streamId: info.id, parentId: parent.nodeId }, 'new parent lost before taking over');
      this.#lostParents.lost(info.id, parent.nodeId);
      return;
    }
    const replaced = this.#ingress.get(info.id);
    this.#ingress.set(info.id, next);
    next.adopt();
    this.#lostParents.recovered(info.id);
    if (replaced && replaced !== next) replaced.close();
    next.on('lost', (reason) => this.#parentLost(info.id, next, reason));
    this.#log.info({ streamId: info.id, parentId: parent.nodeId, moved: !!replaced }, 'carrying stream');
    this.safeEmit('streamstart', info.id, parent.nodeId);
  }

  #parentLost(streamId: string, ingress: PipeIngress, reason: string): void {
    if (this.#ingress.get(streamId) !== ingress || this.#closed) return;
    this.#ingress.delete(streamId);
    this.safeEmit('parentlost', streamId, reason);
    // Viewers stay connected (their consumers come back with the new parent's producers).
    this.#lostParents.lost(streamId, ingress.parentId);
  }

  #release(streamId: string, reason: string): void {
    const stream = this.node.stream(streamId);
    if (!stream) return;
    this.#log.info({ streamId, reason }, 'dropping stream');
    stream.close();
    this.safeEmit('streamstop', streamId);
    this.control.request('stream.released', { streamId }).catch(() => {});
  }

  /** Drop a stream `lingerMs` after its last viewer and child left (or at once when it ends). */
  #watchIdle(stream: LocalStream): void {
    if (this.#watched.has(stream)) return;
    this.#watched.add(stream);
    stream.on('idle', () => {
      clearTimeout(this.#linger.get(stream.id));
      const t = setTimeout(() => {
        this.#linger.delete(stream.id);
        if (stream.viewerCount === 0 && stream.childCount === 0) this.#release(stream.id, 'no viewers or children left');
      }, this.#options.lingerMs);
      t.unref();
      this.#linger.set(stream.id, t);
    });
    stream.on('statechange', (s) => {
      if (s === 'ended') setTimeout(() => this.#release(stream.id, 'stream ended'), 1000).unref();
    });
  }

  /** A viewer with a ticket for a stream we were just assigned (the assignment may still be on its way). */
  #streamForViewer(streamId: string): LocalStream {
    if (this.#draining) throw new CascadeError('CASCADE_ERR_NODE_DRAINING');
    const existing = this.node.stream(streamId);
    if (existing) return existing;
    const stream = this.node.openStream(streamId, { depth: 1, state: 'waiting' });
    this.#watchIdle(stream);
    setTimeout(() => {
      if (!stream.closed && !this.#ingress.has(streamId)) {
        this.#log.warn({ streamId }, 'no assignment arrived for a ticketed viewer');
        stream.close();
      }
    }, PENDING_ASSIGNMENT_MS).unref();
    return stream;
  }

  // ------------------------------------------------------------------ control plane

  #controlPlane(): ControlPlane {
    return {
      placeViewer: async (req) => {
        if (this.#draining) {
          // Still answer: the controller will place the viewer elsewhere.
          return this.control.request('viewer.place', { ...req, exclude: [...(req.exclude ?? []), this.nodeId ?? ''].filter(Boolean) });
        }
        return this.control.request('viewer.place', req);
      },
      viewerLeft: (streamId) => this.#addDepartures(streamId, 1),
    };
  }

  /**
   * Departures waiting for the next heartbeat. The controller never counts more viewers here
   * than we declared we may serve, so more departures than that would be no-ops (or stale ones
   * from before a controller restart); it refuses them.
   */
  #addDepartures(streamId: string, count: number): void {
    const n = Math.min(this.#options.capacity.maxViewers, (this.#left.get(streamId) ?? 0) + count);
    if (n > 0) this.#left.set(streamId, n);
  }

  #startHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.meter.stop();
    this.meter.start(this.#heartbeatMs);
    this.#heartbeat = setInterval(() => void this.#sendHeartbeat(), this.#heartbeatMs);
    this.#heartbeat.unref();
  }

  /**
   * Heartbeat at the period the controller expects (it may differ per controller instance, so
   * on every registration): its node TTL is set against that period, not against ours.
   */
  #followHeartbeat(periodMs: number): void {
    if (this.#closed || periodMs === this.#heartbeatMs) return;
    this.#log.info({ from: this.#heartbeatMs, to: periodMs }, "following the controller's heartbeat period");
    this.#heartbeatMs = periodMs;
    this.#lastTickAt = 0;
    this.#startHeartbeat();
  }

  async #sendHeartbeat(): Promise<void> {
    if (!this.control.connected || !this.nodeId) return;
    // A tick that comes late means this process stalled (GC, load): answers may still sit unread
    // in the socket, so the controller's silence is not judged this round.
    const now = Date.now();
    const late = this.#lastTickAt > 0 && now - this.#lastTickAt > 2 * this.#heartbeatMs;
    this.#lastTickAt = now;
    if (!late && this.control.dropIfSilent()) return;
    // Departures are batched into the heartbeat period.
    const left = [...this.#left];
    this.#left.clear();
    try {
      while (left.length > 0) {
        const [streamId, count] = left[0]!;
        const batch = Math.min(count, MAX_VIEWER_DEPARTURES);
        await this.control.request('viewer.left', { streamId, count: batch });
        if (batch < count) left[0] = [streamId, count - batch];
        else left.shift();
      }
      await this.control.request('node.heartbeat', nodeSnapshot(this.node, this.meter));
    } catch (err) {
      // Departures not applied go with the next heartbeat, unless the controller refused them for good.
      const refused = err instanceof CascadeError && (err.code === 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' || err.code.startsWith('CASCADE_ERR_RELAY_'));
      if (!refused) {
        for (const [streamId, count] of left) this.#addDepartures(streamId, count);
      }
      this.#log.debug({ err }, 'heartbeat failed');
    }
  }
}
