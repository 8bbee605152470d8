import { isIPv6 } from 'node:net';
import type { types } from 'mediasoup';
import {
  CascadeError,
  InvalidStateError,
  LogBudget,
  TypedEmitter,
  webSocketChannel,
  type IceServer,
  type Logger,
  type MessageChannel,
  type StreamState,
} from '@cascade/protocol';
import { WsEndpoint, type UpgradeRouter } from '@cascade/protocol/node';
import type { ControlPlane } from './ControlPlane.js';
import { LocalStream } from './LocalStream.js';
import { loadMediasoup } from './loadMediasoup.js';
import { Session } from './Session.js';
import type { TicketVerifier } from './auth/TicketVerifier.js';
import { WorkerPool } from './WorkerPool.js';
import type { ClientTransportData, ClientWebRtcTransport, StreamRouterHandle } from './appData.js';

export interface ListenIp {
  ip: string;
  announcedIp: string;
}

export interface MediaNodeOptions {
  id: string;
  kind: 'origin' | 'relay';
  /** WebRTC listen addresses with the address announced for each (already resolved). */
  listenIps: ListenIp[];
  iceServers: IceServer[];
  mediasoup: {
    workerBin: string;
    numWorkers: number;
    logLevel: types.WorkerLogLevel;
    rtcMinPort: number;
    rtcMaxPort: number;
    /** The one UDP/TCP port of worker 0's WebRTC server (worker i: +i); 0: any of the range; -1: none (ports per transport). */
    mediaPort: number;
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
    /**
     * Serve a `/ws` endpoint on the node's HTTP server. Relays do not: their sessions come
     * through the controller (tunnels), so a volunteer opens no signalling port. Default true.
     */
    endpoint?: boolean;
    /** See SessionLimits; absent: no deadline. */
    firstMessageTimeoutMs?: number;
    idleTimeoutMs?: number;
    /** Refused messages logged per second and error code, all sessions together. Default 5. */
    refusalLogsPerSec?: number;
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
  newtransport: [transport: types.Transport, router: StreamRouterHandle];
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
  readonly #endpoint: WsEndpoint | undefined;
  readonly #streams = new Map<string, LocalStream>();
  readonly #sessions = new Map<string, Session>();
  readonly #services: NodeService[] = [];
  #refusalLog: LogBudget | undefined;
  #control: ControlPlane | undefined;
  /** A transport kept for the controller's reachability check of the media port (see mediaCheck()). */
  #checkTransport: types.WebRtcTransport | undefined;
  #closed = false;

  static async create(
    options: MediaNodeOptions,
    deps: { logger: Logger; upgrades?: UpgradeRouter; tickets: TicketVerifier },
  ): Promise<MediaNode> {
    const ms = await loadMediasoup(options.mediasoup.workerBin);
    const m = options.mediasoup;
    const pool = await WorkerPool.create(
      ms,
      {
        numWorkers: m.numWorkers,
        logLevel: m.logLevel,
        rtcMinPort: m.rtcMinPort,
        rtcMaxPort: m.rtcMaxPort,
        ...(m.mediaPort >= 0 ? { webRtcServer: { listenIps: options.listenIps, port: m.mediaPort } } : {}),
      },
      { logger: deps.logger },
    );
    return new MediaNode(options, pool, deps);
  }

  private constructor(
    options: MediaNodeOptions,
    pool: WorkerPool,
    deps: { logger: Logger; upgrades?: UpgradeRouter; tickets: TicketVerifier },
  ) {
    super();
    this.id = options.id;
    this.kind = options.kind;
    this.options = options;
    this.pool = pool;
    this.tickets = deps.tickets;
    this.#rootLog = deps.logger;
    this.log = deps.logger.child({ component: 'MediaNode', nodeId: options.id });
    if (options.signalling.endpoint !== false) {
      if (!deps.upgrades) throw new TypeError('a node with a /ws endpoint needs an UpgradeRouter');
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
      this.#endpoint.on('connection', (ws, req) => this.attachSession(webSocketChannel(ws), req.socket.remoteAddress ?? ''));
    }
    pool.on('workerdied', () => this.safeEmit('workerdied'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  get control(): ControlPlane {
    if (!this.#control) throw new CascadeError('CASCADE_ERR_CONTROLLER_UNAVAILABLE', 'node not connected to a controller');
    return this.#control;
  }

  /** The node's control plane; sessions other nodes open here through the controller become sessions of this node. */
  set control(control: ControlPlane) {
    this.#control = control;
    control.onTunnel((channel, info) => {
      const session = this.attachSession(channel, info.remoteAddress);
      session.log.debug({ tunnel: info.id, from: info.from }, 'session through the controller');
    });
  }

  get streams(): LocalStream[] {
    return [...this.#streams.values()];
  }

  get sessions(): Session[] {
    return [...this.#sessions.values()];
  }

  /** Open `/ws` connections (sessions through tunnels not included). */
  get connectionCount(): number {
    return this.#endpoint?.connections ?? 0;
  }

  /** UDP port of worker 0's WebRTC server: the port viewers reach this node on (undefined without one). */
  async mediaPort(): Promise<number | undefined> {
    return (await this.pool.mediaPorts())[0];
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
  /** Close this node's pipes to relay `childId` for a stream (the controller moved it elsewhere). */
  dropChild(streamId: string, childId: string): void {
    for (const sessionId of this.stream(streamId)?.childSessions(childId) ?? []) {
      const session = this.#sessions.get(sessionId);
      session?.log.warn({ streamId, childId }, 'closing a pipe to a relay moved away from this node');
      session?.close(4409, 'CASCADE_ERR_RELAY_NOT_ASSIGNED');
    }
  }

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
      router.observer.on('newtransport', (t) => this.observer.safeEmit('newtransport', t, router));
    });
    this.log.info({ streamId: id, depth: init.depth }, 'stream opened');
    this.observer.safeEmit('newstream', stream);
    return stream;
  }

  /** A WebRTC transport for a session, on `router`. */
  async createWebRtcTransport(router: StreamRouterHandle, direction: 'send' | 'recv'): Promise<ClientWebRtcTransport> {
    const o = this.options;
    const webRtcServer = this.pool.webRtcServerOf(router.appData.worker);
    const transport = await router.createWebRtcTransport<ClientTransportData>({
      ...(webRtcServer ? { webRtcServer } : { listenIps: o.listenIps.map((l) => ({ ip: l.ip, announcedIp: l.announcedIp })) }),
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      // Viewers receive the stream's digest channel over SCTP (integrity.subscribe).
      ...(direction === 'recv' ? { enableSctp: true, numSctpStreams: { OS: 16, MIS: 16 }, maxSctpMessageSize: 256 * 1024 } : {}),
      initialAvailableOutgoingBitrate: o.mediasoup.initialAvailableOutgoingBitrate,
      appData: { direction, router },
    });
    if (direction === 'send') await transport.setMaxIncomingBitrate(o.mediasoup.maxIncomingBitrate);
    return transport;
  }

  /**
   * What the controller needs to check that viewers reach this node: the media port, and the
   * ICE credentials of a transport kept for that purpose on it (the controller's STUN request
   * must be answered by this node's mediasoup, signed with this password).
   */
  async mediaCheck(): Promise<{ mediaPort: number; ufrag: string; pwd: string }> {
    const worker = this.pool.workers[0];
    const server = worker && this.pool.webRtcServerOf(worker);
    if (!worker || !server) throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', 'a node registering with a controller needs a media port (mediasoup.mediaPort >= 0)');
    if (!this.#checkTransport || this.#checkTransport.closed) {
      const router = await worker.createRouter({ mediaCodecs: [] });
      this.#checkTransport = await router.createWebRtcTransport({ webRtcServer: server, enableUdp: true, enableTcp: true });
    }
    const mediaPort = (await this.pool.mediaPorts())[0]!;
    const { usernameFragment, password } = this.#checkTransport.iceParameters;
    return { mediaPort, ufrag: usernameFragment, pwd: password };
  }

  /** Stop accepting connections and close everything; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#endpoint?.close(1001, 'node shutting down');
    for (const s of [...this.#sessions.values()]) s.close(1001, 'node shutting down');
    for (const s of [...this.#streams.values()]) s.close();
    this.pool.close();
    this.observer.safeEmit('close');
  }

  /** A signalling session on any channel: a `/ws` WebSocket, or a tunnel through the controller. */
  attachSession(channel: MessageChannel, remoteAddress: string): Session {
    if (this.#closed) {
      channel.close(4503, 'CASCADE_ERR_NODE_SHUTTING_DOWN');
      throw new InvalidStateError('node closed');
    }
    const o = this.options.signalling;
    const session = new Session(
      channel,
      {
        maxMessageBytes: o.maxMessageBytes,
        rateLimitPerSec: o.rateLimitPerSec,
        requestTimeoutMs: o.requestTimeoutMs,
        remoteAddress,
        maxTransports: 2,
        ...(o.firstMessageTimeoutMs !== undefined ? { firstMessageTimeoutMs: o.firstMessageTimeoutMs } : {}),
        ...(o.idleTimeoutMs !== undefined ? { idleTimeoutMs: o.idleTimeoutMs } : {}),
      },
      { logger: this.log, refusalLog: (this.#refusalLog ??= new LogBudget(o.refusalLogsPerSec ?? 5)) },
    );
    this.#sessions.set(session.id, session);
    session.once('close', () => this.#sessions.delete(session.id));
    for (const s of this.#services) s.attach(session);
    session.log.debug({ remoteAddress }, 'session opened');
    this.observer.safeEmit('newsession', session);
    return session;
  }
}

