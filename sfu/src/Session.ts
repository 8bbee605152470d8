import { randomUUID } from 'node:crypto';
import type { types } from 'mediasoup';
import {
  CascadeError,
  LogBudget,
  NodeRequests,
  Notifications,
  Peer,
  TypedEmitter,
  type Logger,
  type MessageChannel,
  type NotificationType,
  type NotificationData,
} from '@cascade/protocol';
import { isWebRtc, type ClientTransport, type ClientWebRtcTransport } from './appData.js';

export type SessionRole = 'none' | 'viewer' | 'publisher' | 'pipe';

export type NodePeer = Peer<typeof NodeRequests, Record<string, never>, typeof Notifications>;

export interface SessionLimits {
  /** Transports one session may hold. */
  maxTransports: number;
  /** The first request must arrive within this time (ms); otherwise the session ends with PROTOCOL_IDLE. Default: no deadline. */
  firstMessageTimeoutMs?: number;
  /** A session without a role (no stream published, watched or piped) ends with PROTOCOL_IDLE after this time (ms). Default: never. */
  idleTimeoutMs?: number;
}

export type SessionEvents = {
  /** Fired once, whoever closed. Services release what the session held. */
  close: [];
  /** The session is being ended for sending no request (`first`) or holding nothing (`idle`) in time. */
  timeout: [kind: 'first' | 'idle'];
  listenererror: [event: string, error: unknown];
};

/**
 * One signalling session with a media node (a WebSocket to its `/ws`, or a tunnel through the
 * controller) and the mediasoup transports it owns. A session
 * takes one role with its first role-defining request (publish, watch or pipe.open); requests
 * of another role are refused as out of order. Closing the session closes its transports, and
 * with them its producers and consumers, so a client that vanishes leaves nothing behind.
 */
export class Session extends TypedEmitter<SessionEvents> {
  readonly id = randomUUID();
  readonly peer: NodePeer;
  readonly log: Logger;
  readonly remoteAddress: string;
  #role: SessionRole = 'none';
  /** A role-defining request is in progress (see beginRoleRequest). */
  #roleRequest = false;
  streamId: string | undefined;
  /** A viewer served by another node through the controller: that node's id (this session only forwards). */
  forwardedTo: string | undefined;
  /** Every transport the session owns (a pipe session's pipe too): closed with it. */
  readonly #transports = new Map<string, types.Transport>();
  /** Those a client signals about (transport.connect, producer.create, …), typed for that. */
  readonly #clientTransports = new Map<string, ClientTransport>();
  /** Transports being created: they count against the limit before the first await. */
  #reservedTransports = 0;
  readonly #limits: SessionLimits;
  readonly #refusalLog: LogBudget;
  /** Since when the session has held no role (its opening, or the failure of the request that claimed one). */
  #idleSince = Date.now();
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    channel: MessageChannel,
    options: { maxMessageBytes: number; rateLimitPerSec: number; requestTimeoutMs: number; remoteAddress: string } & SessionLimits,
    deps: { logger: Logger; refusalLog?: LogBudget },
  ) {
    super();
    this.remoteAddress = options.remoteAddress;
    this.log = deps.logger.child({ connId: this.id });
    this.#limits = { maxTransports: options.maxTransports, firstMessageTimeoutMs: options.firstMessageTimeoutMs, idleTimeoutMs: options.idleTimeoutMs };
    // Shared by the node's sessions when given: a client can make us refuse, not make us write.
    this.#refusalLog = deps.refusalLog ?? new LogBudget(5);
    this.peer = new Peer({
      channel,
      inbound: NodeRequests,
      outbound: {},
      notifications: {},
      maxMessageBytes: options.maxMessageBytes,
      rateLimitPerSec: options.rateLimitPerSec,
      requestTimeoutMs: options.requestTimeoutMs,
    });
    this.peer.on('close', () => this.close());
    this.peer.handle('session.ping', async () => ({}));
    // INVALID_PARAMS is reported by both events: logged once, as a bad message.
    this.peer.on('protocolerror', (err, type) => this.#logRefusal('warn', { code: err.code, type, detail: err.message }, 'bad message'));
    this.peer.on('handled', (type, ms, err) => {
      if (err && err.code === 'CASCADE_ERR_INTERNAL') this.log.error({ err: err.cause ?? err, type }, 'request failed');
      else if (err && err.code !== 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS') this.#logRefusal('info', { type, code: err.code }, 'request refused');
      else if (!err && type !== 'session.ping') this.log.debug({ type, ms }, 'request handled');
    });
    if (options.firstMessageTimeoutMs !== undefined) this.#armDeadline(options.firstMessageTimeoutMs, 'first');
    else this.#armIdle();
  }

  get closed(): boolean {
    return this.#closed;
  }
  get role(): SessionRole {
    return this.#role;
  }
  get transportCount(): number {
    return this.#transports.size;
  }

  /**
   * A role-defining request (publish, watch) starts awaiting: until the returned function is
   * called, another one on this session is refused, so that a burst of them is one request.
   * The session gets its role only with claimRole(), once the request checked everything, so
   * that nothing in the burst can use a role the request was not granted.
   */
  beginRoleRequest(): () => void {
    if (this.#role !== 'none') throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', `session is already a ${this.#role}`);
    if (this.#roleRequest) throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'a publish or watch is already in progress on this session');
    this.#roleRequest = true;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#roleRequest = false;
    };
  }

  /** Take a role; a session that already has one gets OUT_OF_ORDER. */
  claimRole(role: Exclude<SessionRole, 'none'>, streamId: string): void {
    if (this.#role !== 'none') {
      throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', `session is already a ${this.#role}`);
    }
    this.#role = role;
    this.streamId = streamId;
    clearTimeout(this.#deadline);
  }

  /** Undo claimRole() when the request that claimed it failed. */
  releaseRole(): void {
    this.#role = 'none';
    this.streamId = undefined;
    this.#idleSince = Date.now();
    this.#armIdle();
  }

  requireRole(role: Exclude<SessionRole, 'none'>): string {
    if (this.#role !== role || !this.streamId) {
      throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', `only a ${role} may do this; send ${ROLE_ENTRY[role]} first`);
    }
    return this.streamId;
  }

  /**
   * Take one of the session's transport places before creating a transport (before any
   * await), so that a burst of requests cannot all pass the check. Call the returned function
   * once the transport is added, or when creating it failed; calling it again does nothing.
   */
  reserveTransport(): () => void {
    if (this.#transports.size + this.#reservedTransports >= this.#limits.maxTransports) {
      throw new CascadeError('CASCADE_ERR_MEDIA_LIMIT', `at most ${this.#limits.maxTransports} transports per session`);
    }
    this.#reservedTransports++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#reservedTransports--;
    };
  }

  /** Own a client's transport (WebRTC, or plain RTP for an ingest): found by id from then on. */
  addTransport(transport: ClientTransport): void {
    const owned: types.Transport = transport;
    if (!this.#own(owned)) return;
    this.#clientTransports.set(transport.id, transport);
    owned.observer.once('close', () => this.#clientTransports.delete(transport.id));
  }

  /** Own a pipe toward a child node: closed with the session, never addressed by the client. */
  addPipeTransport(transport: types.PipeTransport): void {
    this.#own(transport);
  }

  /** Closed with the session; its router dying ends the session. False: the session had already ended. */
  #own(transport: types.Transport): boolean {
    if (this.#closed) {
      transport.close();
      return false;
    }
    this.#transports.set(transport.id, transport);
    transport.observer.once('close', () => this.#transports.delete(transport.id));
    transport.once('routerclose', () => {
      this.fail(new CascadeError('CASCADE_ERR_MEDIA_WORKER_DIED', 'the media router of this session closed; reconnect'));
    });
    return true;
  }

  /** A client transport of this session, by id. */
  transport(id: string): ClientTransport {
    const t = this.#clientTransports.get(id);
    if (!t) throw new CascadeError('CASCADE_ERR_MEDIA_TRANSPORT_NOT_FOUND', id);
    return t;
  }

  /** A WebRTC transport of this session (a plain RTP one, an ingest's, is refused). */
  webRtcTransport(id: string): ClientWebRtcTransport {
    const t = this.transport(id);
    if (!isWebRtc(t)) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'not a WebRTC transport');
    return t;
  }

  notify<T extends NotificationType>(type: T, data: NotificationData<T>): void {
    this.peer.notify(type, data);
  }

  /** End the session because of `error`; the client sees the coded close. */
  fail(error: CascadeError): void {
    if (this.#closed) return;
    this.log.warn({ code: error.code }, 'session ended by error');
    this.peer.closeWithError(error);
  }

  close(code = 1000, reason = ''): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#deadline);
    this.peer.close(code, reason);
    for (const t of [...this.#transports.values()]) t.close();
    this.#transports.clear();
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #armIdle(): void {
    const idle = this.#limits.idleTimeoutMs;
    if (idle === undefined || this.#role !== 'none') return;
    this.#armDeadline(Math.max(0, this.#idleSince + idle - Date.now()), 'idle');
  }

  #armDeadline(ms: number, kind: 'first' | 'idle'): void {
    clearTimeout(this.#deadline);
    if (this.#closed) return;
    this.#deadline = setTimeout(() => {
      if (this.#closed) return;
      if (kind === 'first' && this.peer.requestsReceived > 0) {
        // It spoke in time; from now on only holding nothing for too long ends it.
        this.#armIdle();
        return;
      }
      if (kind === 'idle' && this.#role !== 'none') return;
      this.safeEmit('timeout', kind);
      const error = new CascadeError(
        'CASCADE_ERR_PROTOCOL_IDLE',
        kind === 'first' ? `no request within ${ms} ms of connecting` : 'no stream published, watched or pulled in time',
      );
      this.#logRefusal('info', { code: error.code, kind }, 'session timed out');
      this.peer.closeWithError(error);
    }, ms);
    this.#deadline.unref?.();
  }

  #logRefusal(level: 'warn' | 'info', fields: { code: string } & Record<string, unknown>, msg: string): void {
    const suppressed = this.#refusalLog.take(fields.code);
    if (suppressed === undefined) return;
    this.log[level](suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }
}

const ROLE_ENTRY: Record<Exclude<SessionRole, 'none'>, string> = {
  viewer: 'stream.watch',
  publisher: 'stream.publish',
  pipe: 'pipe.open',
};
