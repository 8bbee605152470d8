import {
  CascadeError,
  ControlRequests,
  DefaultReconnectPolicy,
  InvalidStateError,
  MAX_VIEWER_DEPARTURES,
  Peer,
  RelayNotifications,
  RelayRequests,
  TokenRenewal,
  TypedEmitter,
  fromWireError,
  webSocketChannel,
  type CarriedStream,
  type ControlParams,
  type ControlRequestType,
  type ControlResult,
  type IntegrityReport,
  type IntegrityVerdict,
  type Logger,
  type MessageChannel,
  type NodeAnnouncement,
  type HeartbeatAnswer,
  type NodeSnapshot,
  type Placement,
  type ReconnectPolicy,
  type RelayParams,
  type StreamInfo,
  type StreamRecord,
} from '@cascade/protocol';
import { openWebSocket } from '@cascade/protocol/node';
import type { ControlPlane, Tunnel, TunnelInfo } from '../ControlPlane.js';
import { runUploadTest } from './uploadTest.js';
import { ControlTunnels } from './ControlTunnels.js';

export interface RemoteControlPlaneOptions {
  controllerUrl: string;
  token: string;
  /** What the node announces, computed at each registration (addresses and probe credentials may change). */
  announcement: () => Promise<Omit<NodeAnnouncement, 'id'>>;
  /** Requested node id; kept across reconnections once the controller assigned one. */
  nodeId?: string;
  reconnectPolicy?: ReconnectPolicy;
  timeoutMs: number;
  /** Departures reported per stream are capped at this (what the node may serve). */
  maxViewers: number;
  /** Heartbeat period until the controller gives its own (ms). */
  heartbeatIntervalMs: number;
}

export interface RemoteControlHandlers {
  /** Streams carried right now, sent when (re-)registering so a restarted controller can rebuild. */
  carried(): CarriedStream[];
  /** Carry a stream from a parent (relays). */
  assign?(p: RelayParams<'stream.assign'>): Promise<void>;
}

/** Opens the `/control` connection (default: a WebSocket); tests hand in an in-process channel. */
export type ControlConnector = (controllerUrl: string, path: string, options: { timeoutMs: number }) => Promise<MessageChannel>;

const connectWebSocket: ControlConnector = async (url, path, options) => webSocketChannel(await openWebSocket(url, path, options));

export type RemoteControlPlaneEvents = {
  /** Registered (again); the ticket key is known, and the heartbeat period this controller expects (ms). */
  registered: [nodeId: string, ticketPublicKey: string, heartbeatIntervalMs: number];
  /** The controller checked our media address: traffic may come. */
  ready: [nodeId: string];
  /** The control connection dropped; media (and every session) keeps flowing, we are reconnecting. */
  disconnected: [reason: string];
  /** Registration refused for a reason retrying cannot fix (bad token, unreachable, id taken). */
  fatal: [error: CascadeError];
  /** A listener threw (TypedEmitter's safeEmit): the event and the error. */
  listenererror: [event: string, error: unknown];
};

/** Heartbeat periods of silence before the controller is given up (at least its node TTL and one period). */
const SILENT_HEARTBEATS = 4;
/** Bounds on the heartbeat period a controller may ask for (ms): a bad reply must not make the node spin. */
const MIN_HEARTBEAT_MS = 50;
const MAX_HEARTBEAT_MS = 60_000;

type ControlPeer = Peer<typeof RelayRequests, typeof ControlRequests, typeof RelayNotifications>;

const FATAL = new Set([
  'CASCADE_ERR_AUTH_MISSING_TOKEN',
  'CASCADE_ERR_AUTH_INVALID_TOKEN',
  'CASCADE_ERR_AUTH_EXPIRED_TOKEN',
  'CASCADE_ERR_AUTH_REVOKED_TOKEN',
  'CASCADE_ERR_AUTH_FORBIDDEN',
  'CASCADE_ERR_RELAY_ALREADY_REGISTERED',
  'CASCADE_ERR_RELAY_UNREACHABLE',
  'CASCADE_ERR_RELAY_INVALID_CAPACITY',
  'CASCADE_ERR_RELAY_ADDRESS',
  'CASCADE_ERR_PROTOCOL_VERSION',
]);

/**
 * A media node's control plane over its `/control` connection to a remote controller (relays;
 * origins without a controller of their own): it registers, answers the reachability checks,
 * heartbeats (departures batched in), takes assignments, and carries the sessions other nodes
 * open here and the ones this node opens elsewhere (tunnels). When the controller goes away the
 * node keeps serving: media and sessions stay, and everything resumes on the next registration.
 *
 * (Over 350 lines: most of it is the ControlPlane interface, a page of one-line requests over the
 * one connection; the connection loop, registration and heartbeats beside them share that
 * connection's state. The tunnels it carries live in ControlTunnels.)
 */
export class RemoteControlPlane extends TypedEmitter<RemoteControlPlaneEvents> implements ControlPlane {
  readonly #options: RemoteControlPlaneOptions;
  readonly #handlers: RemoteControlHandlers;
  readonly #log: Logger;
  readonly #policy: ReconnectPolicy;
  readonly #tunnels: ControlTunnels;
  readonly #left = new Map<string, number>();
  readonly #connect: ControlConnector;
  /** Callers of whenReady() waiting for the controller to admit this node. */
  readonly #readyWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  #prober: ((p: RelayParams<'integrity.probe'>) => Promise<IntegrityVerdict>) | undefined;
  /** Rejects start() when the plane is closed before it registered. */
  #abortStart: (() => void) | undefined;
  #peer: ControlPeer | undefined;
  #nodeId: string | undefined;
  #ready = false;
  #closed = false;
  #pendingNonce: string | undefined;
  #registered = false;
  #lastAnswerAt = 0;
  #maxSilenceMs = Infinity;
  #heartbeatMs: number;
  /** Keeps the (short-lived) token fresh: the newest one registers after a reconnect. */
  readonly #renewal: TokenRenewal;

  constructor(options: RemoteControlPlaneOptions, deps: { logger: Logger; handlers: RemoteControlHandlers; connect?: ControlConnector }) {
    super();
    this.#options = options;
    this.#handlers = deps.handlers;
    this.#connect = deps.connect ?? connectWebSocket;
    this.#tunnels = new ControlTunnels({ connected: () => this.connected, notify: (type, data) => this.#notify(type, data) });
    this.#log = deps.logger.child({ component: 'RemoteControlPlane' });
    this.#nodeId = options.nodeId;
    this.#heartbeatMs = options.heartbeatIntervalMs;
    this.#policy = options.reconnectPolicy ?? new DefaultReconnectPolicy({ baseDelayMs: 200, maxDelayMs: 2000, maxElapsedMs: Infinity });
    this.#renewal = new TokenRenewal(() => this.request('node.renewToken', {}));
    this.#renewal.start(options.token);
    this.#renewal.on('renewed', (_token, expiresAt) => this.#log.info({ expiresAt: new Date(expiresAt).toISOString() }, 'token renewed'));
    this.#renewal.on('revoked', (err) => this.#log.error({ code: err.code }, 'the operator revoked this token'));
  }

  get nodeId(): string | undefined {
    return this.#nodeId;
  }
  get connected(): boolean {
    return !!this.#peer && !this.#peer.closed && this.#registered;
  }
  get ready(): boolean {
    return this.#ready && this.connected;
  }
  get heartbeatIntervalMs(): number {
    return this.#heartbeatMs;
  }
  /** Sessions other nodes hold here through the controller. */
  get hostedCount(): number {
    return this.#tunnels.hostedCount;
  }

  /** Connect and keep connected until close(). Resolves after the first registration (or rejects if it is refused). */
  start(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.once('registered', (id) => resolve(id));
      this.once('fatal', (err) => reject(err));
      this.#abortStart = () => reject(new InvalidStateError('control plane closed'));
      void this.#loop();
    });
  }

  /**
   * Resolves once the controller admitted this node (`node.ready`, the event relays report as
   * `ready`): registration alone is not enough, requests before the reachability check are
   * refused. See ControlPlane.whenReady.
   */
  whenReady(): Promise<void> {
    if (this.#closed) return Promise.reject(new InvalidStateError('control plane closed'));
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#settleReadyWaiters(new InvalidStateError('control plane closed'));
    this.#abortStart?.();
    this.#renewal.stop();
    this.#peer?.close(1000, 'node stopping');
    this.#peer = undefined;
    this.#tunnels.closeAll(1001, 'CASCADE_ERR_NODE_SHUTTING_DOWN');
    this.removeAllListeners();
  }

  async request<T extends ControlRequestType>(type: T, params: ControlParams<T>): Promise<ControlResult<T>> {
    const peer = this.#peer;
    if (!peer || peer.closed) throw new CascadeError('CASCADE_ERR_CONTROLLER_UNAVAILABLE', 'not connected to the controller');
    try {
      const res = (await peer.request(type, params)) as ControlResult<T>;
      this.#lastAnswerAt = Date.now();
      return res;
    } catch (err) {
      // A refusal is an answer too; only silence (a timeout, a closed socket) counts against the connection.
      if (!(err instanceof CascadeError && err.code.startsWith('CASCADE_ERR_CLIENT_'))) this.#lastAnswerAt = Date.now();
      throw err;
    }
  }

  /** The pipe-port probe arrived: echo its nonce (one that arrives before registration completes waits). */
  probeReceived(nonce: string): void {
    this.#pendingNonce = nonce;
    if (this.connected) void this.#ackProbe();
  }

  // ------------------------------------------------------------------ ControlPlane

  /**
   * Departures, then the snapshot. A controller that is frozen, or behind a network that
   * black-holes packets, keeps the TCP connection open but answers nothing: once it has been
   * silent for longer than it waits for our heartbeats the connection is dropped and the loop
   * registers again; media keeps flowing meanwhile.
   */
  async heartbeat(snapshot: NodeSnapshot, stalled = false): Promise<HeartbeatAnswer> {
    if (!this.connected || !this.#nodeId) return {};
    if (!stalled && this.#dropIfSilent()) return {};
    const left = [...this.#left];
    this.#left.clear();
    try {
      while (left.length > 0) {
        const [streamId, count] = left[0]!;
        const batch = Math.min(count, MAX_VIEWER_DEPARTURES);
        await this.request('viewer.left', { streamId, count: batch });
        if (batch < count) left[0] = [streamId, count - batch];
        else left.shift();
      }
      return await this.request('node.heartbeat', snapshot);
    } catch (err) {
      // Departures not applied go with the next heartbeat, unless the controller refused them for good.
      const refused = err instanceof CascadeError && (err.code === 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' || err.code.startsWith('CASCADE_ERR_RELAY_'));
      if (!refused) for (const [streamId, count] of left) this.#addDepartures(streamId, count);
      this.#log.debug({ err }, 'heartbeat failed');
      return {};
    }
  }

  async placeViewer(request: { streamId: string; exclude?: string[]; token?: string }): Promise<{ placement: Placement; stream: StreamInfo; integrityKey?: string }> {
    return this.request('viewer.place', request);
  }

  viewerLeft(streamId: string): void {
    this.#addDepartures(streamId, 1);
  }

  placementUnused(streamId: string, nodeId: string): void {
    // Only the node a place is on may give it back; a remote front's unused place is reconciled by that node's heartbeats.
    if (nodeId === this.#nodeId) this.#addDepartures(streamId, 1);
  }

  openTunnel(nodeId: string): Tunnel {
    return this.#tunnels.open(nodeId);
  }

  onTunnel(handler: (channel: MessageChannel, info: TunnelInfo) => void): void {
    this.#tunnels.onTunnel(handler);
  }

  async putStream(record: StreamRecord): Promise<void> {
    await this.request('stream.put', { stream: record });
  }

  async listStreams(): Promise<StreamRecord[]> {
    return (await this.request('stream.list', {})).streams;
  }

  async getStream(streamId: string): Promise<{ stream: StreamRecord; viewers: number } | undefined> {
    const res = await this.request('stream.get', { streamId });
    return res.stream ? { stream: res.stream, viewers: res.viewers } : undefined;
  }

  async reportIntegrity(report: IntegrityReport): Promise<void> {
    await this.request('viewer.integrity', report);
  }

  onProbe(prober: (p: RelayParams<'integrity.probe'>) => Promise<IntegrityVerdict>): void {
    this.#prober = prober;
  }

  async parentLost(streamId: string, parentNodeId: string): Promise<void> {
    await this.request('stream.parentLost', { streamId, parentNodeId });
  }

  async parentSilent(streamId: string, parentNodeId: string): Promise<boolean> {
    return (await this.request('stream.parentSilent', { streamId, parentNodeId })).gone;
  }

  async streamReleased(streamId: string): Promise<void> {
    await this.request('stream.released', { streamId });
  }

  async drain(): Promise<void> {
    await this.request('node.drain', {});
  }

  // ------------------------------------------------------------------ internals

  /**
   * Departures waiting for the next heartbeat. The controller never counts more viewers here
   * than we declared we may serve, so more departures than that would be no-ops (or stale ones
   * from before a controller restart); it refuses them.
   */
  #addDepartures(streamId: string, count: number): void {
    const n = Math.min(this.#options.maxViewers, (this.#left.get(streamId) ?? 0) + count);
    if (n > 0) this.#left.set(streamId, n);
  }

  #dropIfSilent(): boolean {
    const peer = this.#peer;
    if (!peer || peer.closed || !this.#registered) return false;
    const silentMs = Date.now() - this.#lastAnswerAt;
    if (silentMs <= this.#maxSilenceMs) return false;
    this.#log.warn({ silentMs }, 'the controller stopped answering; connecting again (media keeps flowing)');
    const err = new CascadeError('CASCADE_ERR_CONTROLLER_UNAVAILABLE', 'no answer');
    peer.close(err.closeCode, err.code);
    return true;
  }

  #notify<T extends 'tunnel.open' | 'tunnel.data' | 'tunnel.close'>(type: T, data: unknown): void {
    // While disconnected nothing can be carried: the far side's requests time out, its pings are answered at its front.
    if (this.connected) this.#peer!.notify(type, data);
  }

  #onNotification(type: keyof typeof RelayNotifications, data: unknown): void {
    if (this.#tunnels.receive(type, data)) return;
    if (type === 'node.ready') {
      this.#ready = true;
      this.#settleReadyWaiters();
      this.safeEmit('ready', this.#nodeId!);
    }
  }

  async #loop(): Promise<void> {
    let retryCount = 0;
    let since = Date.now();
    while (!this.#closed) {
      try {
        const lost = await this.#session();
        retryCount = 0;
        since = Date.now();
        await lost;
        if (this.#closed) return;
        this.#ready = false;
        this.safeEmit('disconnected', 'control connection closed');
      } catch (err) {
        const e = err instanceof CascadeError ? err : new CascadeError('CASCADE_ERR_CONTROLLER_UNAVAILABLE', String(err));
        if (FATAL.has(e.code)) {
          this.#log.error({ code: e.code, msg: e.message }, 'controller refused this node');
          // Waiters learn why, not just that the plane closed.
          this.#settleReadyWaiters(e);
          this.safeEmit('fatal', e);
          this.close();
          return;
        }
        this.#log.warn({ code: e.code, msg: e.message, retryCount }, 'cannot reach the controller');
      }
      const delay = this.#policy.nextRetryDelayMs({ retryCount: retryCount++, elapsedMs: Date.now() - since }) ?? 2000;
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** One connected session: resolves to a promise that settles when the connection closes. */
  async #session(): Promise<Promise<void>> {
    const o = this.#options;
    const channel = await this.#connect(o.controllerUrl, '/control', { timeoutMs: o.timeoutMs });
    const peer: ControlPeer = new Peer({
      channel,
      inbound: RelayRequests,
      outbound: ControlRequests,
      notifications: RelayNotifications,
      requestTimeoutMs: o.timeoutMs,
      ignoreUnknownNotifications: true,
    });
    let closedWith: { code: number; reason: string } | undefined;
    const lost = new Promise<void>((resolve) =>
      peer.on('close', (code, reason) => {
        closedWith = { code, reason };
        this.#registered = false;
        resolve();
      }),
    );
    peer.handle('stream.assign', async (p) => {
      if (!this.#handlers.assign) throw new CascadeError('CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE', 'this node carries no assigned streams');
      await this.#handlers.assign(p);
      return {};
    });
    peer.handle('integrity.probe', (p) => {
      if (!this.#prober) throw new CascadeError('CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE', 'this node does not probe relays');
      return this.#prober(p);
    });
    peer.handle('node.uploadTest', async (p) => ({
      sentBytes: await runUploadTest(o.controllerUrl, { ...p, timeoutMs: o.timeoutMs }),
    }));
    peer.on('notification', (type, data) => this.#onNotification(type as keyof typeof RelayNotifications, data));
    this.#peer = peer;
    let res: ControlResult<'node.register'>;
    try {
      res = await peer.request('node.register', {
        token: this.#renewal.token || o.token,
        node: { ...(await o.announcement()), ...(this.#nodeId ? { id: this.#nodeId } : {}) },
        streams: this.#handlers.carried(),
        tunnels: this.#tunnels.held(),
      });
    } catch (err) {
      peer.close();
      // A refusal during registration can arrive as a close code (e.g. 4400 RELAY_UNREACHABLE).
      if (closedWith && closedWith.reason.startsWith('CASCADE_ERR_')) throw fromWireError({ code: closedWith.reason, message: closedWith.reason });
      throw err;
    }
    this.#nodeId = res.nodeId;
    this.#registered = !peer.closed;
    this.#lastAnswerAt = Date.now();
    // The controller's period and TTL, not our own configuration: an operator who shortens them
    // on the controller must not see nodes on defaults expire (or give it up too late).
    const period = Math.min(MAX_HEARTBEAT_MS, Math.max(MIN_HEARTBEAT_MS, res.heartbeatIntervalMs));
    if (period !== res.heartbeatIntervalMs) this.#log.warn({ asked: res.heartbeatIntervalMs, period }, 'heartbeat period out of bounds; using the nearest bound');
    this.#heartbeatMs = period;
    const ttl = res.nodeTtlMs ?? SILENT_HEARTBEATS * period;
    this.#maxSilenceMs = Math.max(SILENT_HEARTBEATS * period, ttl + period);
    this.safeEmit('registered', res.nodeId, res.ticketPublicKey, period);
    this.#renewal.start(this.#renewal.token || o.token);
    if (this.#pendingNonce) void this.#ackProbe();
    // A fatal close after registration (probe failed) must stop the loop too.
    return lost.then(() => {
      if (closedWith && FATAL.has(closedWith.reason)) throw fromWireError({ code: closedWith.reason, message: closedWith.reason });
    });
  }

  /** Resolve (admitted) or reject (turned away, closed) everyone waiting in whenReady(). */
  #settleReadyWaiters(err?: Error): void {
    for (const w of this.#readyWaiters.splice(0)) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  async #ackProbe(): Promise<void> {
    const nonce = this.#pendingNonce;
    if (!nonce) return;
    this.#pendingNonce = undefined;
    try {
      await this.request('node.probeAck', { nonce });
    } catch (err) {
      this.#log.debug({ err }, 'probe acknowledgement refused (a stale nonce?)');
    }
  }
}
