import { setTimeout as delay } from 'node:timers/promises';
import { CascadeError, TypedEmitter, type Logger, type NodeCapacity } from '@cascade/protocol';
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
  type MediaNodeOptions,
} from '@cascade/sfu';
import { StreamPuller } from './StreamPuller.js';

export interface RelayNodeOptions {
  media: Omit<MediaNodeOptions, 'kind'>;
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
 * only what a signed pipe ticket allows. The process around it (its status page, the home
 * router's port mapping, finding its address) is startRelay's.
 */
export class RelayNode extends TypedEmitter<RelayNodeEvents> {
  readonly node: MediaNode;
  readonly meter: TrafficMeter;
  readonly control: RemoteControlPlane;
  readonly #options: RelayNodeOptions;
  readonly #log: Logger;
  readonly #probe: ProbeResponder;
  readonly #puller: StreamPuller;
  readonly #heartbeat: NodeHeartbeat;
  #draining = false;
  #closed = false;

  static async create(options: RelayNodeOptions, deps: { logger: Logger }): Promise<RelayNode> {
    const tickets = new TicketVerifier();
    const node = await MediaNode.create({ ...options.media, kind: 'relay', signalling: { ...options.media.signalling, endpoint: false } }, { logger: deps.logger, tickets });
    let relay: RelayNode | undefined;
    let probe: ProbeResponder;
    try {
      const { rtcMinPort, rtcMaxPort } = options.media.mediasoup;
      probe = await ProbeResponder.bind(options.media.listenIps[0]!.ip, { min: rtcMinPort, max: rtcMaxPort }, (nonce) => relay?.control.probeReceived(nonce), deps);
    } catch (err) {
      await node.close();
      throw err;
    }
    relay = new RelayNode(options, node, probe, tickets, deps.logger);
    return relay;
  }

  private constructor(options: RelayNodeOptions, node: MediaNode, probe: ProbeResponder, tickets: TicketVerifier, logger: Logger) {
    super();
    this.#options = options;
    this.node = node;
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
  }

  get nodeId(): string | undefined {
    return this.control.nodeId;
  }
  get draining(): boolean {
    return this.#draining;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** The heartbeat period in force (the controller's, once registered), ms. */
  get heartbeatPeriodMs(): number {
    return this.#heartbeat.periodMs;
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
      await delay(100);
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
  }
}
