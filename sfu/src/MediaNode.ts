import { isIPv6 } from 'node:net';
import type { types } from 'mediasoup';
import {
  CascadeError,
  InvalidStateError,
  TypedEmitter,
  type IceServer,
  type Logger,
  type StreamState,
} from '@cascade/protocol';
import { WsEndpoint, type MessageChannelEnd, type UpgradeRouter } from '@cascade/protocol/node';
import type { ControlPlane } from './ControlPlane.js';
import { LocalStream } from './LocalStream.js';
import { loadMediasoup } from './loadMediasoup.js';
import { Session } from './Session.js';
import type { TicketVerifier } from './auth/TicketVerifier.js';
import { WorkerPool } from './WorkerPool.js';

export interface ListenIp {
  ip: string;
  announcedIp: string;
}

export interface MediaNodeOptions {
  id: string;
  kind: 'origin' | 'relay';
  /** URL viewers and child relays use to reach this node's `/ws`. */
  publicUrl: string;
  /** WebRTC listen addresses with the address announced for each (already resolved). */
  listenIps: ListenIp[];
  iceServers: IceServer[];
  mediasoup: {
    workerBin: string;
    numWorkers: number;
    logLevel: types.WorkerLogLevel;
    rtcMinPort: number;
    rtcMaxPort: number;
    maxIncomingBitrate: number;
    initialAvailableOutgoingBitrate: number;
    consumersPerRouter: number;
  };
  signalling: {
    maxMessageBytes: number;
    rateLimitPerSec: number;
    pingIntervalMs: number;
    requestTimeoutMs: number;
    maxConnections: number;
  };
}

export interface NodeService {
  /** Register this service's request handlers on a new session. */
  attach(session: Session): void;
}

export type MediaNodeEvents = {
  /** A local stream closed (ended, released, or its node closing). */
  streamclose: [stream: LocalStream];
  /** A worker died; streams that lived on it are being rebuilt. */
  workerdied: [];
  listenererror: [event: string, error: unknown];
};
export type MediaNodeObserverEvents = {
  newstream: [stream: LocalStream];
  newsession: [session: Session];
  newtransport: [transport: types.Transport];
  close: [];
  listenererror: [event: string, error: unknown];
};

/**
 * What the origin and every relay have in common: mediasoup workers, the streams carried
 * here, the `/ws` signalling endpoint and its sessions. Roles are added as services (viewer,
 * publisher, pipe egress); the topology decisions come from the ControlPlane.
 */
export class MediaNode extends TypedEmitter<MediaNodeEvents> {
  readonly observer = new TypedEmitter<MediaNodeObserverEvents>();
  readonly id: string;
  readonly kind: 'origin' | 'relay';
  readonly options: MediaNodeOptions;
  readonly pool: WorkerPool;
  readonly tickets: TicketVerifier;
  readonly log: Logger;
  /** The logger given to us, for components that add their own `component` binding. */
  readonly #rootLog: Logger;
  readonly #endpoint: WsEndpoint;
  readonly #streams = new Map<string, LocalStream>();
  readonly #sessions = new Map<string, Session>();
  readonly #services: NodeService[] = [];
  #control: ControlPlane | undefined;
  #closed = false;

  static async create(
    options: MediaNodeOptions,
    deps: { logger: Logger; upgrades: UpgradeRouter; tickets: TicketVerifier },
  ): Promise<MediaNode> {
    const ms = await loadMediasoup(options.mediasoup.workerBin);
    const pool = await WorkerPool.create(
      ms,
      {
        numWorkers: options.mediasoup.numWorkers,
        logLevel: options.mediasoup.logLevel,
        rtcMinPort: options.mediasoup.rtcMinPort,
        rtcMaxPort: options.mediasoup.rtcMaxPort,
      },
      { logger: deps.logger },
    );
    return new MediaNode(options, pool, deps);
  }

  private constructor(
    options: MediaNodeOptions,
    pool: WorkerPool,
    deps: { logger: Logger; upgrades: UpgradeRouter; tickets: TicketVerifier },
  ) {
    super();
    this.id = options.id;
    this.kind = options.kind;
    this.options = options;
    this.pool = pool;
    this.tickets = deps.tickets;
    this.#rootLog = deps.logger;
    this.log = deps.logger.child({ component: 'MediaNode', nodeId: options.id });
    this.#endpoint = new WsEndpoint(
      deps.upgrades,
      {
        path: '/ws',
        maxConnections: options.signalling.maxConnections,
        pingIntervalMs: options.signalling.pingIntervalMs,
        // Viewers on busy machines answer late; a dead one is only a resource to reclaim.
        deadAfterMs: options.signalling.pingIntervalMs * 2.5,
        // ws itself only stops frames far beyond our limit; between the two, clients get a coded error.
        maxPayloadBytes: Math.max(options.signalling.maxMessageBytes * 16, 1024 * 1024),
      },
      { logger: deps.logger },
    );
    this.#endpoint.on('connection', (ws, req) => this.#onConnection(ws, req.socket.remoteAddress ?? ''));
    pool.on('workerdied', () => this.safeEmit('workerdied'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  get control(): ControlPlane {
    if (!this.#control) throw new CascadeError('CASCADE_ERR_CONTROLLER_UNAVAILABLE', 'node not connected to a controller');
    return this.#control;
  }

  set control(control: ControlPlane) {
    this.#control = control;
  }

  get streams(): LocalStream[] {
    return [...this.#streams.values()];
  }

  get sessions(): Session[] {
    return [...this.#sessions.values()];
  }

  get connectionCount(): number {
    return this.#endpoint.connections;
  }

  /** The pipe listen address: the first listen IP, announced as configured. */
  get pipeListenIp(): ListenIp {
    return this.options.listenIps[0]!;
  }

  /** The listen address for a pipe to `peerIp`: the first of its IP family (a relay on IPv6 only needs an IPv6 parent end). */
  pipeListenIpFor(peerIp: string): ListenIp {
    const v6 = isIPv6(peerIp);
    return this.options.listenIps.find((l) => isIPv6(l.announcedIp || l.ip) === v6) ?? this.pipeListenIp;
  }

  use(service: NodeService): this {
    this.#services.push(service);
    return this;
  }

  stream(id: string): LocalStream | undefined {
    return this.#streams.get(id);
  }

  /** The local stream `id`, created if this node does not carry it yet. */
  openStream(id: string, init: { depth: number; state: StreamState; title?: string; createdAt?: number }): LocalStream {
    if (this.#closed) throw new InvalidStateError('node closed');
    let s = this.#streams.get(id);
    if (s) return s;
    s = new LocalStream(
      this.pool,
      {
        id,
        consumersPerRouter: this.options.mediasoup.consumersPerRouter,
        depth: init.depth,
        state: init.state,
        title: init.title ?? '',
        createdAt: init.createdAt ?? Date.now(),
      },
      { logger: this.#rootLog },
    );
    const stream = s;
    this.#streams.set(id, stream);
    stream.once('@close', () => {
      if (this.#streams.get(id) === stream) this.#streams.delete(id);
      this.safeEmit('streamclose', stream);
    });
    stream.router.observer.on('newrouter', (router) => {
      router.observer.on('newtransport', (t) => this.observer.safeEmit('newtransport', t));
    });
    this.log.info({ streamId: id, depth: init.depth }, 'stream opened');
    this.observer.safeEmit('newstream', stream);
    return stream;
  }

  /** A WebRTC transport for a session, on `router`. */
  async createWebRtcTransport(router: types.Router, direction: 'send' | 'recv'): Promise<types.WebRtcTransport> {
    const o = this.options;
    const transport = await router.createWebRtcTransport({
      listenIps: o.listenIps.map((l) => ({ ip: l.ip, announcedIp: l.announcedIp })),
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      initialAvailableOutgoingBitrate: o.mediasoup.initialAvailableOutgoingBitrate,
      appData: { direction, router },
    });
    if (direction === 'send') await transport.setMaxIncomingBitrate(o.mediasoup.maxIncomingBitrate);
    return transport;
  }

  /** Stop accepting connections and close everything; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#endpoint.close(1001, 'node shutting down');
    for (const s of [...this.#sessions.values()]) s.close(1001, 'node shutting down');
    for (const s of [...this.#streams.values()]) s.close();
    this.pool.close();
    this.observer.safeEmit('close');
  }

  /**
   * Run a session over any message channel (an in-process one from createChannelPair(), for
   * a server-side client such as WHIP): the same services and limits as a `/ws` connection.
   * Closed with the node like every session.
   */
  attachSession(channel: MessageChannelEnd, remoteAddress: string): Session {
    if (this.#closed) throw new InvalidStateError('node closed');
    return this.#onConnection(channel, remoteAddress);
  }

  #onConnection(ws: MessageChannelEnd, remoteAddress: string): Session {
    const o = this.options.signalling;
    const session = new Session(
      ws,
      {
        maxMessageBytes: o.maxMessageBytes,
        rateLimitPerSec: o.rateLimitPerSec,
        requestTimeoutMs: o.requestTimeoutMs,
        remoteAddress,
        maxTransports: 2,
      },
      { logger: this.log },
    );
    ws.addEventListener('message', (ev) => session.peer.receive(ev.data));
    ws.addEventListener('close', (ev) => session.peer.socketClosed(ev.code, ev.reason));
    this.#sessions.set(session.id, session);
    session.once('close', () => this.#sessions.delete(session.id));
    session.peer.on('protocolerror', (err, type) => session.log.warn({ code: err.code, type, msg: err.message }, 'bad message'));
    session.peer.on('handled', (type, ms, err) => {
      if (err && err.code === 'CASCADE_ERR_INTERNAL') session.log.error({ err: err.cause ?? err, type }, 'request failed');
      else if (err) session.log.info({ type, code: err.code }, 'request refused');
      else if (type !== 'session.ping') session.log.debug({ type, ms }, 'request handled');
    });
    for (const s of this.#services) s.attach(session);
    session.log.debug({ remoteAddress }, 'session opened');
    this.observer.safeEmit('newsession', session);
    return session;
  }
}

