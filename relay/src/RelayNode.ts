import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { CascadeError, TypedEmitter, type Logger, type NodeCapacity } from '@cascade/protocol';
import { GuardedHttpServer, rejectUpgrade, type HttpServerLimits } from '@cascade/protocol/node';
import {
  MediaNode,
  NodeHeartbeat,
  IntegrityService,
  PipeEgressService,
  ProbeResponder,
  RemoteControlPlane,
  TicketVerifier,
  TrafficMeter,
  TransportService,
  ViewerService,
  nodeSnapshot,
  registerHttpMetrics,
  registerNodeMetrics,
  type MediaNodeOptions,
} from '@cascade/sfu';
import type { PortMapper } from './nat/index.js';
import { StreamPuller } from './StreamPuller.js';

export interface RelayNodeOptions {
  media: Omit<MediaNodeOptions, 'kind'>;
  /** Health and metrics for the volunteer and the operator's scraper (nobody else needs it); port 0: any. */
  http: ({ host: string; port: number } & HttpServerLimits) | undefined;
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

const SOFTWARE = 'cascade-relay/0.2.0';

/**
 * A relay: a media node that pulls streams from the parent the controller assigns and
 * re-offers them to its viewers and child relays. Volunteers run it on their own machines; it
 * speaks only to the controller (every session, a viewer's or a child relay's, reaches it
 * through its control connection), never to Redis, listens for media on one port, and can pull
 * only what a signed pipe ticket allows.
 */
export class RelayNode extends TypedEmitter<RelayNodeEvents> {
  readonly node: MediaNode;
  readonly meter: TrafficMeter;
  readonly control: RemoteControlPlane;
  readonly registry: Registry;
  /** Base URL of the health/metrics server ('' without one). */
  readonly url: string;
  readonly #options: RelayNodeOptions;
  readonly #log: Logger;
  readonly #server: GuardedHttpServer | undefined;
  readonly #probe: ProbeResponder;
  readonly #puller: StreamPuller;
  readonly #heartbeat: NodeHeartbeat;
  /** The home router's forwarding of our ports, kept open while we run (closed with us). */
  readonly portMapper: PortMapper | undefined;
  readonly #app: express.Express;
  #draining = false;
  #closed = false;

  static async create(options: RelayNodeOptions, deps: { logger: Logger; portMapper?: PortMapper }): Promise<RelayNode> {
    const tickets = new TicketVerifier();
    const node = await MediaNode.create({ ...options.media, kind: 'relay', signalling: { ...options.media.signalling, endpoint: false } }, { logger: deps.logger, tickets });
    let probe: ProbeResponder | undefined;
    let server: GuardedHttpServer | undefined;
    let relay: RelayNode | undefined;
    try {
      const { rtcMinPort, rtcMaxPort } = options.media.mediasoup;
      probe = await ProbeResponder.bind(options.media.listenIps[0]!.ip, { min: rtcMinPort, max: rtcMaxPort }, (nonce) => relay?.control.probeReceived(nonce), deps);
      if (options.http) {
        // The status page answers whoever can reach it with the same deadlines and per-address cap as any server of ours.
        const g = new GuardedHttpServer((req, res) => (relay ? relay.handleHttp(req, res) : res.writeHead(503).end()), options.http, deps);
        server = g;
        // No WebSocket of any kind here: a relay's sessions come through the controller.
        g.server.on('upgrade', (_req, socket) => rejectUpgrade(socket, 'CASCADE_ERR_HTTP_NOT_FOUND', 'a relay has no signalling endpoint'));
        await new Promise<void>((resolve, reject) => {
          g.server.once('error', reject);
          g.server.listen(options.http!.port, options.http!.host, () => resolve());
        });
      }
    } catch (err) {
      probe?.close();
      server?.server.close();
      await node.close();
      throw err;
    }
    relay = new RelayNode(options, node, server, probe, tickets, deps.logger, deps.portMapper);
    return relay;
  }

  private constructor(options: RelayNodeOptions, node: MediaNode, server: GuardedHttpServer | undefined, probe: ProbeResponder, tickets: TicketVerifier, logger: Logger, portMapper: PortMapper | undefined) {
    super();
    this.#options = options;
    this.portMapper = portMapper;
    this.node = node;
    this.#server = server;
    this.#probe = probe;
    this.#log = logger.child({ component: 'RelayNode' });
    this.meter = new TrafficMeter(node, { logger });
    const listen = node.pipeListenIp;
    this.control = new RemoteControlPlane(
      {
        controllerUrl: options.controllerUrl,
        token: options.token,
        nodeId: options.media.id || undefined,
        timeoutMs: options.requestTimeoutMs,
        maxViewers: options.capacity.maxViewers,
        heartbeatIntervalMs: options.heartbeatIntervalMs,
        announcement: async () => {
          const check = await node.mediaCheck();
          return {
            mediaIp: listen.announcedIp,
            mediaPort: check.mediaPort,
            probe: { ufrag: check.ufrag, pwd: check.pwd },
            probePort: probe.port,
            capacity: options.capacity,
            software: SOFTWARE,
          };
        },
      },
      {
        logger,
        handlers: {
          assign: (p) => this.#puller.assign(p),
          carried: () => nodeSnapshot(node, this.meter).streams.filter((s) => s.parentNodeId !== null),
        },
      },
    );
    this.control.on('registered', (id, key) => {
      tickets.setPublicKey(key);
      this.#log.info({ nodeId: id, heartbeatMs: this.control.heartbeatIntervalMs }, 'registered with the controller');
      this.#heartbeat.retime();
      this.safeEmit('registered', id);
    });
    this.control.on('ready', (id) => this.safeEmit('ready', id));
    this.control.on('disconnected', () => this.safeEmit('controllerlost'));
    this.control.on('fatal', (err) => this.safeEmit('fatal', err));

    this.#puller = new StreamPuller(node, this.control, { lingerMs: options.lingerMs, stallTimeoutMs: options.stallTimeoutMs, requestTimeoutMs: options.requestTimeoutMs }, { logger });
    this.#puller.on('streamstart', (s, p) => this.safeEmit('streamstart', s, p));
    this.#puller.on('streamstop', (s) => this.safeEmit('streamstop', s));
    this.#puller.on('parentlost', (s, why) => this.safeEmit('parentlost', s, why));
    node.control = this.control;
    node
      .use(new TransportService(node))
      .use(new ViewerService(node, { iceServers: options.media.iceServers, streamFor: (id) => this.#puller.streamForViewer(id) }))
      .use(new PipeEgressService(node))
      .use(new IntegrityService(node));
    this.#heartbeat = new NodeHeartbeat(node, this.meter, this.control, { logger });

    this.registry = new Registry();
    this.registry.setDefaultLabels({ node: node.id, role: 'relay' });
    collectDefaultMetrics({ register: this.registry, prefix: 'cascade_' });
    registerNodeMetrics(this.registry, node, this.meter);
    this.#app = this.#healthApp();
    if (server) {
      registerHttpMetrics(this.registry, server);
      const port = (server.server.address() as AddressInfo).port;
      this.url = `http://${options.http!.host.includes(':') ? `[${options.http!.host}]` : options.http!.host}:${port}`;
    } else {
      this.url = '';
    }
  }

  get nodeId(): string | undefined {
    return this.control.nodeId;
  }
  get draining(): boolean {
    return this.#draining;
  }

  /** Register and start heartbeating; resolves with the node id (rejects if refused). */
  async start(): Promise<string> {
    this.#heartbeat.start();
    return this.control.start();
  }

  /**
   * Leave gracefully: no new placements, children moved by the controller, viewers asked to
   * move (make-before-break); resolves when they are gone or after drainTimeoutMs.
   */
  async drain(): Promise<void> {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    this.#puller.drain();
    this.#log.info({}, 'draining');
    await this.control.drain().catch((err) => this.#log.warn({ err }, 'controller not told about the drain'));
    for (const s of this.node.sessions) if (s.role === 'viewer') s.notify('node.draining', { reason: 'relay is leaving' });
    const deadline = Date.now() + this.#options.drainTimeoutMs;
    while (Date.now() < deadline && this.node.streams.some((s) => s.viewerCount > 0 || s.childCount > 0)) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat.close();
    this.#puller.close();
    this.control.close();
    this.#probe.close();
    await this.node.close();
    await this.portMapper?.close();
    if (this.#server) {
      const s = this.#server.server;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  /** @private The status page's requests (the server exists before this object does). */
  handleHttp(req: IncomingMessage, res: ServerResponse): void {
    this.#app(req, res);
  }

  #healthApp(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.get('/healthz', (_req, res) => {
      const ok = !this.#closed && this.node.pool.workers.length > 0;
      res.status(ok ? 200 : 503).json({
        status: ok ? 'ok' : 'unavailable',
        node: this.control.nodeId ?? null,
        controller: this.control.connected ? (this.control.ready ? 'ready' : 'probing') : 'disconnected',
        draining: this.#draining,
        heartbeatIntervalMs: this.#heartbeat.periodMs,
        streams: this.node.streams.length,
        viewers: this.node.streams.reduce((n, s) => n + s.viewerCount, 0),
        sessions: this.control.hostedCount,
      });
    });
    app.get('/metrics', async (_req, res) => {
      res.set('Content-Type', this.registry.contentType).send(await this.registry.metrics());
    });
    return app;
  }
}
