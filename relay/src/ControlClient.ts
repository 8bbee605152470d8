import {
  CascadeError,
  ControlRequests,
  DefaultReconnectPolicy,
  Peer,
  RelayRequests,
  TypedEmitter,
  fromWireError,
  Notifications,
  type CarriedStream,
  type ControlParams,
  type ControlRequestType,
  type ControlResult,
  type Logger,
  type NodeAnnouncement,
  type ReconnectPolicy,
  type RelayParams,
} from '@cascade/protocol';
import { openWebSocket } from '@cascade/protocol/node';

export interface ControlClientOptions {
  controllerUrl: string;
  token: string;
  announcement: Omit<NodeAnnouncement, 'id'>;
  /** Requested node id; kept across reconnections once the controller assigned one. */
  nodeId?: string;
  reconnectPolicy?: ReconnectPolicy;
  timeoutMs: number;
}

export interface ControlHandlers {
  assign(p: RelayParams<'stream.assign'>): Promise<void>;
  /** Streams carried right now, sent when (re-)registering so a restarted controller can rebuild. */
  carried(): CarriedStream[];
}

export type ControlClientEvents = {
  /** Registered (again); the ticket key is known, and the heartbeat period this controller expects (ms). */
  registered: [nodeId: string, ticketPublicKey: string, heartbeatIntervalMs: number];
  /** The controller checked our media address: traffic may come. */
  ready: [nodeId: string];
  /** The control connection dropped; media keeps flowing, we are reconnecting. */
  disconnected: [reason: string];
  /** Registration refused for a reason retrying cannot fix (bad token, unreachable, id taken). */
  fatal: [error: CascadeError];
  listenererror: [event: string, error: unknown];
};

/** Heartbeat periods of silence before the controller is given up (at least its node TTL and one period). */
const SILENT_HEARTBEATS = 4;
/**
 * Bounds on the heartbeat period a controller may ask for (ms): the lower one is the config
 * minimum (a bad reply must not make the relay spin), the upper one keeps departures and
 * liveness flowing.
 */
const MIN_HEARTBEAT_MS = 50;
const MAX_HEARTBEAT_MS = 60_000;

const CONTROL_NOTIFICATIONS = { 'node.ready': Notifications['node.ready'] };
type ControlPeer = Peer<typeof RelayRequests, typeof ControlRequests, typeof CONTROL_NOTIFICATIONS>;

const FATAL = new Set([
  'CASCADE_ERR_AUTH_MISSING_TOKEN',
  'CASCADE_ERR_AUTH_INVALID_TOKEN',
  'CASCADE_ERR_AUTH_EXPIRED_TOKEN',
  'CASCADE_ERR_AUTH_FORBIDDEN',
  'CASCADE_ERR_RELAY_ALREADY_REGISTERED',
  'CASCADE_ERR_RELAY_UNREACHABLE',
  'CASCADE_ERR_PROTOCOL_VERSION',
]);

/**
 * A relay's link to the controller (`/control`). It registers, answers the reachability
 * probe, heartbeats, and takes assignments. When the controller goes away the relay keeps
 * serving (the data plane does not depend on it) and this client reconnects and registers
 * again with what it carries, so a restarted controller or Redis rebuilds its state.
 */
export class ControlClient extends TypedEmitter<ControlClientEvents> {
  readonly #options: ControlClientOptions;
  readonly #handlers: ControlHandlers;
  readonly #log: Logger;
  readonly #policy: ReconnectPolicy;
  #peer: ControlPeer | undefined;
  #nodeId: string | undefined;
  #ready = false;
  #closed = false;
  #pendingNonce: string | undefined;
  /** Registered on the current connection. */
  #registered = false;
  /** When the controller last answered a request (or registered us). */
  #lastAnswerAt = 0;
  /** Silence after which the connection is given up (set from the registration reply). */
  #maxSilenceMs = Infinity;

  constructor(options: ControlClientOptions, deps: { logger: Logger; handlers: ControlHandlers }) {
    super();
    this.#options = options;
    this.#handlers = deps.handlers;
    this.#log = deps.logger.child({ component: 'ControlClient' });
    this.#nodeId = options.nodeId;
    this.#policy = options.reconnectPolicy ?? new DefaultReconnectPolicy({ baseDelayMs: 200, maxDelayMs: 2000, maxElapsedMs: Infinity });
  }

  get nodeId(): string | undefined {
    return this.#nodeId;
  }
  get connected(): boolean {
    return !!this.#peer && !this.#peer.closed;
  }
  get ready(): boolean {
    return this.#ready && this.connected;
  }

  /** Connect and keep connected until close(). Resolves after the first registration (or rejects if it is refused). */
  start(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.once('registered', (id) => resolve(id));
      this.once('fatal', (err) => reject(err));
      void this.#loop();
    });
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

  /**
   * A controller that is frozen, or behind a network that black-holes packets, keeps the TCP
   * connection open but answers nothing. Once it has been silent for longer than it waits for
   * our heartbeats (by then it has declared us dead anyway) the connection is dropped and the
   * loop connects and registers again; media keeps flowing meanwhile.
   */
  dropIfSilent(): boolean {
    const peer = this.#peer;
    if (!peer || peer.closed || !this.#registered) return false;
    const silentMs = Date.now() - this.#lastAnswerAt;
    if (silentMs <= this.#maxSilenceMs) return false;
    this.#log.warn({ silentMs }, 'the controller stopped answering; connecting again (media keeps flowing)');
    const err = new CascadeError('CASCADE_ERR_CONTROLLER_UNAVAILABLE', 'no answer');
    peer.close(err.closeCode, err.code);
    return true;
  }

  /**
   * The UDP probe arrived: echo its nonce. Every nonce is echoed (a stale one from an earlier
   * connection is merely refused); one that arrives before registration completes waits.
   */
  probeReceived(nonce: string): void {
    this.#pendingNonce = nonce;
    if (this.#registered && this.connected) void this.#ackProbe();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#peer?.close(1000, 'relay stopping');
    this.#peer = undefined;
    this.removeAllListeners();
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
          this.#log.error({ code: e.code, msg: e.message }, 'controller refused this relay');
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
    const ws = await openWebSocket(o.controllerUrl, '/control', { timeoutMs: o.timeoutMs });
    const peer: ControlPeer = new Peer({
      socket: ws,
      inbound: RelayRequests,
      outbound: ControlRequests,
      notifications: CONTROL_NOTIFICATIONS,
      requestTimeoutMs: o.timeoutMs,
      ignoreUnknownNotifications: true,
    });
    ws.addEventListener('message', (ev) => peer.receive(ev.data));
    let closedWith: { code: number; reason: string } | undefined;
    const lost = new Promise<void>((resolve) =>
      peer.on('close', (code, reason) => {
        closedWith = { code, reason };
        resolve();
      }),
    );
    ws.addEventListener('close', (ev) => peer.socketClosed(ev.code, ev.reason));
    peer
      .handle('stream.assign', async (p) => {
        await this.#handlers.assign(p);
        return {};
      });
    peer.on('notification', (type) => {
      if (type === 'node.ready') {
        this.#ready = true;
        this.safeEmit('ready', this.#nodeId!);
      }
    });
    this.#peer = peer;
    let res: ControlResult<'node.register'>;
    try {
      res = await peer.request('node.register', {
        token: o.token,
        node: { ...o.announcement, ...(this.#nodeId ? { id: this.#nodeId } : {}) },
        streams: this.#handlers.carried(),
      });
    } catch (err) {
      peer.close();
      // A refusal during registration can arrive as a close code (e.g. 4400 RELAY_UNREACHABLE).
      if (closedWith && closedWith.reason.startsWith('CASCADE_ERR_')) throw fromWireError({ code: closedWith.reason, message: closedWith.reason });
      throw err;
    }
    this.#nodeId = res.nodeId;
    this.#registered = true;
    this.#lastAnswerAt = Date.now();
    // The controller's period and TTL, not our own configuration: an operator who shortens them
    // on the controller must not see relays on defaults expire (or give it up too late).
    const period = Math.min(MAX_HEARTBEAT_MS, Math.max(MIN_HEARTBEAT_MS, res.heartbeatIntervalMs));
    if (period !== res.heartbeatIntervalMs) this.#log.warn({ asked: res.heartbeatIntervalMs, period }, 'heartbeat period out of bounds; using the nearest bound');
    const ttl = res.nodeTtlMs ?? SILENT_HEARTBEATS * period;
    this.#maxSilenceMs = Math.max(SILENT_HEARTBEATS * period, ttl + period);
    void lost.then(() => (this.#registered = false));
    this.safeEmit('registered', res.nodeId, res.ticketPublicKey, period);
    if (this.#pendingNonce) void this.#ackProbe();
    // A fatal close after registration (probe failed) must stop the loop too.
    return lost.then(() => {
      if (closedWith && FATAL.has(closedWith.reason)) throw fromWireError({ code: closedWith.reason, message: closedWith.reason });
    });
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
