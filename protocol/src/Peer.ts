/**
 * One end of a signalling connection: request/response correlation, validation of everything
 * inbound, typed errors out, rate limiting. Used on both sides (media node sessions, the
 * controller's relay channel, the relay's control and pipe clients, the browser SDK), so
 * framing and error handling are written once.
 *
 * It runs on a MessageChannel (a WebSocket through `webSocketChannel()`, a tunnel through the
 * controller, an in-process pair) and wires itself to it.
 *
 * (Over 350 lines: one engine. Inbound checks, dispatch, correlation and rate limiting all work
 * on the same pending-request table and close state, and keeping them together is what makes it
 * the one place where framing and errors are written; the envelope codec is in envelope.ts.)
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
import type { MessageChannel } from './channel.js';
import { CascadeError, EnvelopeError, fromWireError, toCascadeError } from './errors.js';
import { TypedEmitter } from './TypedEmitter.js';
import { assertValid, isValid } from './validate.js';


/** Time as the Peer sees it (rate limiting, request durations); injected in tests. */
export interface PeerClock {
  now(): number;
}
const systemClock: PeerClock = { now: () => Date.now() };

/**
 * A request or notification the Peer received in forwarding mode (see `forward()`), already
 * checked for size, rate and envelope shape, not for its parameters.
 */
export interface ForwardedMessage {
  raw: string;
  kind: 'request' | 'notification';
  id: MessageId | undefined;
  type: string;
  data: unknown;
}

export type RequestDefs = Record<string, { params: TSchema; result: TSchema }>;
export type NotificationDefs = Record<string, TSchema>;

export type Handler<D extends RequestDefs, T extends keyof D> = (
  params: Static<D[T]['params']>,
) => Promise<Static<D[T]['result']>> | Static<D[T]['result']>;

export interface PeerOptions<In extends RequestDefs, Out extends RequestDefs, N extends NotificationDefs> {
  /** What the Peer runs on; it subscribes to its frames and its close. */
  channel: MessageChannel;
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
  clock?: PeerClock;
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
  readonly #socket: MessageChannel;
  readonly #clock: PeerClock;
  #forward: ((msg: ForwardedMessage) => boolean) | undefined;
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
  #rate: number;
  #burst: number;
  #tokens: number;
  #lastRefill: number;

  constructor(options: PeerOptions<In, Out, N>) {
    super();
    this.#socket = options.channel;
    this.#clock = options.clock ?? systemClock;
    this.#lastRefill = this.#clock.now();
    this.#inbound = options.inbound;
    this.#outbound = options.outbound;
    this.#notifications = options.notifications;
    this.#maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#ignoreUnknown = options.ignoreUnknownNotifications ?? false;
    this.#rate = options.rateLimitPerSec ?? 0;
    this.#burst = options.rateBurst ?? this.#rate * 2;
    this.#tokens = this.#burst;
    options.channel.onMessage((raw) => this.receive(raw));
    options.channel.onClose((code, reason) => this.socketClosed(code, reason));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Change the inbound rate limit (a connection that carries more sessions may send more).
   * `burst` defaults to 2 × perSec; 0 disables the limit.
   */
  setRateLimit(perSec: number, burst = perSec * 2): void {
    this.#rate = perSec;
    this.#burst = burst;
    this.#tokens = Math.min(this.#tokens, burst);
  }

  /**
   * Forwarding mode: from now on every inbound request and notification, once its size, rate
   * and envelope are checked, goes to `sink` instead of the handlers; when `sink` returns
   * false the message is handled here after all (a message the forwarder keeps for itself).
   * Responses still settle this Peer's own pending requests.
   */
  forward(sink: (msg: ForwardedMessage) => boolean): void {
    this.#forward = sink;
  }

  /** Handle a forwarded message here after all (the forwarder could not pass it on). */
  handleLocally(msg: ForwardedMessage): void {
    if (this.#closed) return;
    if (msg.kind === 'request' && msg.id !== undefined) void this.#dispatch(msg.id, msg.type, msg.data);
    else this.#onNotification(msg.type, msg.data);
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
    options: { timeoutMs?: number; onId?: (id: MessageId) => void } = {},
  ): Promise<Static<Out[T]['result']>> {
    if (this.#closed || this.#socket.readyState !== 1) {
      return Promise.reject(new CascadeError('CASCADE_ERR_CLIENT_CONNECTION', 'connection is not open'));
    }
    const id = this.#nextId++;
    options.onId?.(id);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new CascadeError('CASCADE_ERR_CLIENT_TIMEOUT', type));
      }, options.timeoutMs ?? this.#timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, schema: this.#outbound[type].result });
      this.#send(encodeRequest(id, type, params));
    });
  }

  /** Send a frame as it is: a message forwarded from another node, already framed there. */
  sendRaw(text: string): void {
    if (this.#closed) return;
    this.#send(text);
  }

  /** Answer request `id` with an error (for a request this Peer forwards instead of handling). */
  respondError(id: MessageId, error: CascadeError): void {
    if (this.#closed) return;
    this.#send(encodeError(id, error.toWire()));
    this.safeEmit('handled', '(forwarded)', 0, error);
  }

  /**
   * Listen to one type of inbound notification, its data typed by its schema (validated before
   * any listener sees it). Returns the function that stops listening.
   *
   * The schemas are read through `this` (M) rather than N, which keeps N out of the class's
   * public shape: a Peer built with fewer notifications than its declared type names (the
   * media node's sessions) still type-checks.
   */
  onNotification<T extends keyof M & string, M extends NotificationDefs = N>(
    this: Peer<In, Out, M>,
    type: T,
    handler: (data: Static<M[T]>) => void,
  ): () => void {
    const listener = (t: string, data: unknown) => {
      if (t === type) handler(data as Static<M[T]>);
    };
    this.on('notification', listener);
    return () => this.off('notification', listener);
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
      const id = err instanceof EnvelopeError ? err.requestId : null;
      if (e.code === 'CASCADE_ERR_PROTOCOL_TOO_LARGE') this.#fatal(e, id);
      else this.#reject(id, e, undefined);
      return;
    }
    const fwd = this.#forward;
    if (fwd && env.kind !== 'response') {
      // Only what this end would accept is passed on: a type nobody speaks is refused here.
      const known = env.kind === 'request' ? !!this.#inbound[env.type] : !!this.#notifications[env.type];
      if (!known) {
        if (env.kind === 'request') this.#reject(env.id, new CascadeError('CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE', env.type), env.type);
        else this.#onNotification(env.type, env.data);
        return;
      }
      if (fwd({ raw, kind: env.kind, id: env.kind === 'request' ? env.id : undefined, type: env.type, data: env.data })) return;
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
    const started = this.#clock.now();
    try {
      assertValid(def.params, data);
      const result = await handler(data);
      if (!this.#closed) this.#send(encodeResult(id, result ?? {}));
      this.safeEmit('handled', type, this.#clock.now() - started, undefined);
    } catch (err) {
      const e = toCascadeError(err);
      if (!this.#closed) this.#send(encodeError(id, e.toWire()));
      this.safeEmit('handled', type, this.#clock.now() - started, e);
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
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#lastRefill) / 1000) * this.#rate);
    this.#lastRefill = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
