import type { MessageSocket } from '../Peer.js';

/**
 * What a Peer adapter needs of a message transport: a MessageSocket plus the two events of the
 * WebSocket API it listens to (`ws` sockets and browser WebSockets fit as they are).
 */
export interface MessageChannelEnd extends MessageSocket {
  addEventListener(type: 'message', listener: (ev: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (ev: { code: number; reason: string }) => void): void;
}

type Listener = ((ev: { data: unknown }) => void) | ((ev: { code: number; reason: string }) => void);

class LocalEnd implements MessageChannelEnd {
  readyState = 1;
  other!: LocalEnd;
  readonly #listeners = { message: [] as ((ev: { data: unknown }) => void)[], close: [] as ((ev: { code: number; reason: string }) => void)[] };
  /** Deliveries to this end, in order; a close is queued behind the messages sent before it. */
  readonly #queue: (() => void)[] = [];
  #draining = false;

  addEventListener(type: 'message' | 'close', listener: Listener): void {
    (this.#listeners[type] as Listener[]).push(listener);
  }

  send(data: string): void {
    if (this.readyState !== 1) return;
    const to = this.other;
    to.#enqueue(() => {
      if (to.readyState !== 3) for (const l of to.#listeners.message) l({ data });
    });
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState !== 1) return;
    this.readyState = 3;
    const to = this.other;
    // The other end is closing from now on: it still reads what was sent before, sends nothing more.
    to.readyState = 2;
    const notify = (end: LocalEnd) => () => {
      end.readyState = 3;
      for (const l of end.#listeners.close) l({ code, reason });
    };
    this.#enqueue(notify(this));
    to.#enqueue(notify(to));
  }

  #enqueue(fn: () => void): void {
    this.#queue.push(fn);
    if (this.#draining) return;
    this.#draining = true;
    // Asynchronous like a socket, so that a handler never runs inside the sender's call stack.
    setImmediate(() => {
      while (this.#queue.length) {
        try {
          this.#queue.shift()!();
        } catch {
          // a listener's fault is its own; the channel keeps delivering
        }
      }
      this.#draining = false;
    });
  }
}

/**
 * Two connected ends of an in-process message channel. Messages arrive asynchronously and in
 * order; closing either end closes both, each end's `close` listeners firing once with the code
 * and reason given. Lets a server-side client (WHIP, WHEP) speak the node signalling to a media
 * node in the same process with the same Peer code as over a WebSocket.
 */
export function createChannelPair(): [MessageChannelEnd, MessageChannelEnd] {
  const a = new LocalEnd();
  const b = new LocalEnd();
  a.other = b;
  b.other = a;
  return [a, b];
}
