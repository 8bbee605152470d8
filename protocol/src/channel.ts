/**
 * What a signalling `Peer` runs on: a WebSocket (browser or `ws`), a tunnel through the
 * controller to a session on another node, or an in-process pair. One interface, so that the
 * same Peer and the same node sessions work over all of them.
 */

/** The sending half, as the WebSocket API has it. */
export interface MessageSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** 1 means open, as in the WebSocket API. */
  readonly readyState: number;
}

export interface MessageChannel extends MessageSocket {
  /** Every inbound frame, in order. Listeners added after a frame arrived do not see it. */
  onMessage(listener: (data: unknown) => void): void;
  /** Once, when the channel is gone (whoever closed it). */
  onClose(listener: (code: number, reason: string) => void): void;
}

export const CHANNEL_OPEN = 1;
export const CHANNEL_CLOSING = 2;
export const CHANNEL_CLOSED = 3;

/** The part of a WebSocket (the browser's or `ws`'s) the adapter uses. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  readonly readyState: number;
  addEventListener(type: 'message', listener: (ev: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (ev: { code: number; reason: string }) => void): void;
}

/** A WebSocket as a MessageChannel: the one adapter every endpoint uses. */
export function webSocketChannel(ws: WebSocketLike): MessageChannel {
  return {
    send: (data) => ws.send(data),
    close: (code, reason) => ws.close(code, reason),
    get readyState() {
      return ws.readyState;
    },
    onMessage: (listener) => ws.addEventListener('message', (ev) => listener(ev.data)),
    onClose: (listener) => ws.addEventListener('close', (ev) => listener(ev.code, ev.reason)),
  };
}

/**
 * A channel whose two directions are wired by its owner: `deliver()` feeds inbound frames,
 * `closed()` ends it from the far side, and `send`/`close` go to the functions given. Tunnels and
 * in-process pairs are built on it.
 */
export class ManualChannel implements MessageChannel {
  readonly #send: (data: string) => void;
  readonly #onLocalClose: (code: number, reason: string) => void;
  readonly #messageListeners: ((data: unknown) => void)[] = [];
  readonly #closeListeners: ((code: number, reason: string) => void)[] = [];
  #state = CHANNEL_OPEN;

  constructor(send: (data: string) => void, onLocalClose: (code: number, reason: string) => void) {
    this.#send = send;
    this.#onLocalClose = onLocalClose;
  }

  get readyState(): number {
    return this.#state;
  }

  send(data: string): void {
    if (this.#state !== CHANNEL_OPEN) return;
    this.#send(data);
  }

  /** Close from this side: tell the far side, then our own listeners. Idempotent. */
  close(code = 1000, reason = ''): void {
    if (this.#state !== CHANNEL_OPEN) return;
    this.#state = CHANNEL_CLOSED;
    this.#onLocalClose(code, reason);
    this.#emitClose(code, reason);
  }

  onMessage(listener: (data: unknown) => void): void {
    this.#messageListeners.push(listener);
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#closeListeners.push(listener);
  }

  /** A frame from the far side (still read while closing: it was sent before the close). */
  deliver(data: unknown): void {
    if (this.#state === CHANNEL_CLOSED) return;
    for (const l of this.#messageListeners) l(data);
  }

  /** The far side is closing: nothing more may be sent, what it sent before still arrives. */
  closing(): void {
    if (this.#state === CHANNEL_OPEN) this.#state = CHANNEL_CLOSING;
  }

  /** The far side closed (or the path to it is gone for good). Idempotent. */
  closed(code: number, reason: string): void {
    if (this.#state === CHANNEL_CLOSED) return;
    this.#state = CHANNEL_CLOSED;
    this.#emitClose(code, reason);
  }

  #emitClose(code: number, reason: string): void {
    for (const l of this.#closeListeners) l(code, reason);
    this.#messageListeners.length = 0;
    this.#closeListeners.length = 0;
  }
}

/**
 * Two channels connected in process, for a server-side client (WHIP, WHEP) speaking to a node in
 * its own process: frames arrive asynchronously and in order, as on a socket; closing either end
 * closes both, once, after the frames sent before the close.
 */
export function channelPair(): [ManualChannel, ManualChannel] {
  const wire = (to: () => ManualChannel) => [
    (data: string) => queueMicrotask(() => to().deliver(data)),
    (code: number, reason: string) => {
      to().closing();
      queueMicrotask(() => to().closed(code, reason));
    },
  ] as const;
  const a: ManualChannel = new ManualChannel(...wire(() => b));
  const b: ManualChannel = new ManualChannel(...wire(() => a));
  return [a, b];
}
