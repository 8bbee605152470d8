import { randomUUID } from 'node:crypto';
import type { types } from 'mediasoup';
import {
  CascadeError,
  NodeRequests,
  Notifications,
  Peer,
  TypedEmitter,
  type Logger,
  type MessageChannel,
  type NotificationType,
  type NotificationData,
} from '@cascade/protocol';

export type SessionRole = 'none' | 'viewer' | 'publisher' | 'pipe';

export type NodePeer = Peer<typeof NodeRequests, Record<string, never>, typeof Notifications>;

export type SessionEvents = {
  /** Fired once, whoever closed. Services release what the session held. */
  close: [];
  listenererror: [event: string, error: unknown];
};

export interface SessionLimits {
  /** Transports one session may hold. */
  maxTransports: number;
}

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
  streamId: string | undefined;
  /** A viewer served by another node through the controller: that node's id (this session only forwards). */
  forwardedTo: string | undefined;
  readonly #transports = new Map<string, types.Transport>();
  readonly #limits: SessionLimits;
  #closed = false;

  constructor(
    channel: MessageChannel,
    options: { maxMessageBytes: number; rateLimitPerSec: number; requestTimeoutMs: number; remoteAddress: string } & SessionLimits,
    deps: { logger: Logger },
  ) {
    super();
    this.remoteAddress = options.remoteAddress;
    this.log = deps.logger.child({ connId: this.id });
    this.#limits = { maxTransports: options.maxTransports };
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

  /** Take a role; a session that already has one gets OUT_OF_ORDER. */
  claimRole(role: Exclude<SessionRole, 'none'>, streamId: string): void {
    if (this.#role !== 'none') {
      throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', `session is already a ${this.#role}`);
    }
    this.#role = role;
    this.streamId = streamId;
  }

  /** Undo claimRole() when the request that claimed it failed. */
  releaseRole(): void {
    this.#role = 'none';
    this.streamId = undefined;
  }

  requireRole(role: Exclude<SessionRole, 'none'>): string {
    if (this.#role !== role || !this.streamId) {
      throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', `only a ${role} may do this; send ${ROLE_ENTRY[role]} first`);
    }
    return this.streamId;
  }

  checkTransportLimit(): void {
    if (this.#transports.size >= this.#limits.maxTransports) {
      throw new CascadeError('CASCADE_ERR_MEDIA_LIMIT', `at most ${this.#limits.maxTransports} transports per session`);
    }
  }

  /** Own a transport: closed with the session; its router dying ends the session. */
  addTransport(transport: types.Transport): void {
    if (this.#closed) {
      transport.close();
      return;
    }
    this.#transports.set(transport.id, transport);
    transport.observer.once('close', () => this.#transports.delete(transport.id));
    transport.once('routerclose', () => {
      this.fail(new CascadeError('CASCADE_ERR_MEDIA_WORKER_DIED', 'the media router of this session closed; reconnect'));
    });
  }

  transport<T extends types.Transport = types.WebRtcTransport>(id: string): T {
    const t = this.#transports.get(id);
    if (!t) throw new CascadeError('CASCADE_ERR_MEDIA_TRANSPORT_NOT_FOUND', id);
    return t as T;
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
    this.peer.close(code, reason);
    for (const t of [...this.#transports.values()]) t.close();
    this.#transports.clear();
    this.safeEmit('close');
    this.removeAllListeners();
  }
}

const ROLE_ENTRY: Record<Exclude<SessionRole, 'none'>, string> = {
  viewer: 'stream.watch',
  publisher: 'stream.publish',
  pipe: 'pipe.open',
};
