/**
 * One end of a signalling connection: request/response correlation, validation of everything
 * inbound, typed errors out, rate limiting. Used on both sides (media node sessions, the
 * controller's relay channel, the relay's control and pipe clients, the browser SDK), so
 * framing and error handling are written once.
 *
 * It does not own the socket: an adapter feeds it `receive()` and `socketClosed()`.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import {
  encodeError,
  encodeNotification,
  encodeRequest,
  encodeResult,
  parseEnvelope,
  DEFAULT_MAX_MESSAGE_BYTES,
  type MessageId,
} from './envelope.js';
import { CascadeError, fromWireError, toCascadeError } from './errors.js';
import { TypedEmitter } from './TypedEmitter.js';
import { assertValid, isValid } from './validate.js';

export interface MessageSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** 1 means open, as in the WebSocket API. */
  readonly readyState: number;
}

export type RequestDefs = Record<string, { params: TSchema; result: TSchema }>;
export type NotificationDefs = Record<string, TSchema>;

export type Handler<D extends RequestDefs, T extends keyof D> = (
  params: Static<D[T]['params']>,
) => Promise<Static<D[T]['result']>> | Static<D[T]['result']>;

export interface PeerOptions<In extends RequestDefs, Out extends RequestDefs, N extends NotificationDefs> {
  socket: MessageSocket;
  /** Requests this end answers. */
  inbound: In;
  /** Requests this end sends. */
  outbound: Out;
  /** Notifications this end may receive; unknown ones are ignored (forward compatibility). */
  notifications: N;
  /** Default 64 KiB. */
  maxMessageBytes?: number;
  /** ms. Default 10000. */
  requestTimeoutMs?: number;
  /** Inbound messages per second allowed on average; 0 disables. Default 0. */
  rateLimitPerSec?: number;
  /** Burst allowance for the rate limit. Default 2 × rateLimitPerSec. */
  rateBurst?: number;
  /**
   * Clients set this so that a notification added by a newer server is skipped rather than
   * answered with an error. Servers leave it off: a client has no notifications to send.
   */
  ignoreUnknownNotifications?: boolean;
}

export type PeerEvents = {
  /** A notification that passed validation. */
  notification: [type: string, data: unknown];
  /** Something the remote sent was rejected (already answered with a coded error). */
  protocolerror: [error: CascadeError, type: string | undefined];
  /** A request was handled; `error` is set if it failed. For metrics and logs. */
  handled: [type: string, durationMs: number, error: CascadeError | undefined];
  close: [code: number, reason: string];
  listenererror: [event: string, error: unknown];
};

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
  schema: TSchema;
}

export class Peer<
  In extends RequestDefs,
  Out extends RequestDefs,
  N extends NotificationDefs,
> extends TypedEmitter<PeerEvents> {
  readonly #socket: MessageSocket;
  readonly #inbound: In;
  readonly #outbound: Out;
  readonly #notifications: N;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  readonly #ignoreUnknown: boolean;
  readonly #handlers = new Map<string, (p: unknown) => unknown>();
  readonly #pending = new Map<MessageId, Pending>();
  #nextId = 1;
  #closed = false;
  #requestsReceived = 0;
  // Token bucket for inbound rate limiting.
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #lastRefill = Date.now();

  constructor(options: PeerOptions<In, Out, N>) {
    super();
    this.#socket = options.socket;
    this.#inbound = options.inbound;
    this.#outbound = options.outbound;
    this.#notifications = options.notifications;
    this.#maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#ignoreUnknown = options.ignoreUnknownNotifications ?? false;
    this.#rate = options.rateLimitPerSec ?? 0;
    this.#burst = options.rateBurst ?? this.#rate * 2;
    this.#tokens = this.#burst;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Inbound requests of a type this end handles, so far (whether they succeeded or not). */
  get requestsReceived(): number {
    return this.#requestsReceived;
  }

  /** Register the handler of an inbound request type. */
  handle<T extends keyof In & string>(type: T, handler: Handler<In, T>): this {
    this.#handlers.set(type, handler as (p: unknown) => unknown);
    return this;
  }

  /** Send a request; resolves with the validated result or rejects with a CascadeError. */
  request<T extends keyof Out & string>(
    type: T,
    params: Static<Out[T]['params']>,
    options: { timeoutMs?: number } = {},
  ): Promise<Static<Out[T]['result']>> {
    if (this.#closed || this.#socket.readyState !== 1) {
      return Promise.reject(new CascadeError('CASCADE_ERR_CLIENT_CONNECTION', 'connection is not open'));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new CascadeError('CASCADE_ERR_CLIENT_TIMEOUT', type));
      }, options.timeoutMs ?? this.#timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, schema: this.#outbound[type].result });
      this.#send(encodeRequest(id, type, params));
    });
  }

  notify(type: string, data: unknown): void {
    if (this.#closed) return;
    this.#send(encodeNotification(type, data));
  }

  /** Feed one inbound frame. Never throws: every problem is answered with a coded error. */
  receive(raw: unknown): void {
    if (this.#closed) return;
    if (this.#rate > 0 && !this.#takeToken()) {
      this.#fatal(new CascadeError('CASCADE_ERR_PROTOCOL_RATE_LIMITED', `more than ${this.#rate} messages/s`), null);
      return;
    }
    if (typeof raw !== 'string') {
      this.#reject(null, new CascadeError('CASCADE_ERR_PROTOCOL_MALFORMED', 'binary frames are not accepted'), undefined);
      return;
    }
    let env;
    try {
      env = parseEnvelope(raw, this.#maxBytes);
    } catch (err) {
      const e = toCascadeError(err);
      const id = (e as CascadeError & { requestId?: MessageId }).requestId ?? null;
      if (e.code === 'CASCADE_ERR_PROTOCOL_TOO_LARGE') this.#fatal(e, id);
      else this.#reject(id, e, undefined);
      return;
    }
    switch (env.kind) {
      case 'request':
        void this.#dispatch(env.id, env.type, env.data);
        return;
      case 'notification':
        this.#onNotification(env.type, env.data);
        return;
      case 'response':
        this.#onResponse(env);
        return;
    }
  }

  /** The socket closed (from either side): fail pending requests and emit `close` once. */
  socketClosed(code = 1006, reason = ''): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new CascadeError('CASCADE_ERR_CLIENT_CONNECTION', `connection closed (${code})`));
    }
    this.#pending.clear();
    this.safeEmit('close', code, reason);
  }

  /** Close the socket with a code; idempotent. */
  close(code = 1000, reason = ''): void {
    if (this.#closed) return;
    try {
      this.#socket.close(code, reason.slice(0, 120));
    } catch {
      // the socket may already be gone; socketClosed() below still cleans up
    }
    this.socketClosed(code, reason);
  }

  /** Tell the remote why and close with the error's close code (not a protocol violation). */
  closeWithError(error: CascadeError): void {
    if (this.#closed) return;
    this.#send(encodeError(null, error.toWire()));
    this.close(error.closeCode, error.code);
  }

  async #dispatch(id: MessageId, type: string, data: unknown): Promise<void> {
    const def = this.#inbound[type];
    const handler = this.#handlers.get(type);
    if (!def || !handler) {
      this.#reject(id, new CascadeError('CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE', type), type);
      return;
    }
    this.#requestsReceived++;
    const started = Date.now();
    try {
      assertValid(def.params, data);
      const result = await handler(data);
      if (!this.#closed) this.#send(encodeResult(id, result ?? {}));
      this.safeEmit('handled', type, Date.now() - started, undefined);
    } catch (err) {
      const e = toCascadeError(err);
      if (!this.#closed) this.#send(encodeError(id, e.toWire()));
      this.safeEmit('handled', type, Date.now() - started, e);
      if (e.code === 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS') this.safeEmit('protocolerror', e, type);
    }
  }

  #onNotification(type: string, data: unknown): void {
    const schema = this.#notifications[type];
    if (!schema) {
      if (this.#ignoreUnknown) return;
      this.#reject(null, new CascadeError('CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE', type), type);
      return;
    }
    if (!isValid(schema, data)) {
      this.#reject(null, new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', type), type);
      return;
    }
    this.safeEmit('notification', type, data);
  }

  #onResponse(env: { id: MessageId | null; ok: boolean; data?: unknown; error?: unknown }): void {
    if (env.id === null) {
      // The remote rejected something we sent without an id (a notification).
      this.safeEmit('protocolerror', fromWireError(env.error), undefined);
      return;
    }
    const p = this.#pending.get(env.id);
    if (!p) return; // late answer to a timed-out request
    this.#pending.delete(env.id);
    clearTimeout(p.timer);
    if (!env.ok) {
      p.reject(fromWireError(env.error));
      return;
    }
    if (!isValid(p.schema, env.data)) {
      p.reject(new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'invalid response from remote'));
      return;
    }
    p.resolve(env.data);
  }

  #reject(id: MessageId | null, error: CascadeError, type: string | undefined): void {
    this.#send(encodeError(id, error.toWire()));
    this.safeEmit('protocolerror', error, type);
  }

  #fatal(error: CascadeError, id: MessageId | null): void {
    if (this.#closed) return;
    this.#send(encodeError(id, error.toWire()));
    this.safeEmit('protocolerror', error, undefined);
    this.close(error.closeCode, error.code);
  }

  #send(text: string): void {
    if (this.#socket.readyState !== 1) return;
    try {
      this.#socket.send(text);
    } catch {
      // a send on a socket closing underneath us; the close event follows
    }
  }

  #takeToken(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#lastRefill) / 1000) * this.#rate);
    this.#lastRefill = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** Wire a Peer to a WebSocket (browser WebSocket or `ws`): both offer addEventListener. */
export function attachWebSocket(
  peer: { receive(raw: unknown): void; socketClosed(code?: number, reason?: string): void },
  ws: {
    addEventListener(type: 'message', l: (ev: { data: unknown }) => void): void;
    addEventListener(type: 'close', l: (ev: { code: number; reason: string }) => void): void;
  },
): void {
  ws.addEventListener('message', (ev) => peer.receive(ev.data));
  ws.addEventListener('close', (ev) => peer.socketClosed(ev.code, ev.reason));
}
