import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { PROBE_PREFIX, type Logger } from '@cascade/protocol';
import { bindingRequest, successTransactionId, verifyIntegrity } from './stun.js';

/** Probe datagrams per check, spread over its timeout: a lossy path (a volunteer's Wi-Fi) drops some, rarely all. */
const COPIES = 8;

interface Pending {
  resolve: (ok: boolean) => void;
  pwd: string;
}

/**
 * The controller's reachability checks of a media node, from one UDP socket: a STUN Binding
 * request to the node's WebRTC port (what viewers use), and a nonce to its pipe-port probe
 * responder (what parents and children use), echoed back over the node's control connection.
 * Both only ever go to the address and ports the gateway has already vetted.
 */
export class MediaProbe {
  readonly #socket: dgram.Socket;
  readonly #log: Logger;
  readonly #stun = new Map<string, Pending>();

  constructor(deps: { logger: Logger }) {
    this.#log = deps.logger.child({ component: 'MediaProbe' });
    this.#socket = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    this.#socket.on('error', (err) => this.#log.warn({ err }, 'probe socket error'));
    this.#socket.on('message', (msg) => this.#onMessage(msg));
    this.#socket.bind(0);
    this.#socket.unref();
  }

  /** Resolves true once the node's mediasoup answered a Binding request at ip:port, false after timeoutMs. */
  stun(ip: string, port: number, credentials: { ufrag: string; pwd: string }, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timers: ReturnType<typeof setTimeout>[] = [];
      const keys: string[] = [];
      const done = (ok: boolean) => {
        for (const t of timers) clearTimeout(t);
        for (const k of keys) this.#stun.delete(k);
        resolve(ok);
      };
      const sendOne = () => {
        // Each copy its own transaction: any answer will do.
        const { message, transactionId } = bindingRequest(credentials.ufrag, credentials.pwd);
        const key = transactionId.toString('hex');
        keys.push(key);
        this.#stun.set(key, { resolve: done, pwd: credentials.pwd });
        this.#send(message, port, ip);
      };
      sendOne();
      const step = Math.max(50, Math.floor(timeoutMs / COPIES));
      for (let i = 1; i < COPIES; i++) timers.push(setTimeout(sendOne, step * i));
      timers.push(setTimeout(() => done(false), timeoutMs));
      for (const t of timers) t.unref();
    });
  }

  /**
   * Send a fresh nonce to ip:port, in copies spread over timeoutMs; returns it and a stop
   * function. The node proves it got one by echoing it over its control connection.
   */
  nonce(ip: string, port: number, timeoutMs: number): { nonce: string; stop: () => void } {
    const nonce = randomBytes(12).toString('hex');
    const msg = Buffer.from(PROBE_PREFIX + nonce);
    const timers: ReturnType<typeof setTimeout>[] = [];
    this.#send(msg, port, ip);
    const step = Math.max(50, Math.floor(timeoutMs / COPIES));
    for (let i = 1; i < COPIES; i++) timers.push(setTimeout(() => this.#send(msg, port, ip), step * i));
    for (const t of timers) t.unref();
    return { nonce, stop: () => timers.forEach((t) => clearTimeout(t)) };
  }

  close(): void {
    for (const p of this.#stun.values()) p.resolve(false);
    this.#stun.clear();
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
  }

  #send(msg: Buffer, port: number, ip: string): void {
    const target = ip.includes(':') ? ip : `::ffff:${ip}`;
    this.#socket.send(msg, port, target, (err) => err && this.#log.warn({ err, ip, port }, 'probe send failed'));
  }

  #onMessage(msg: Buffer): void {
    const tid = successTransactionId(msg);
    if (!tid) return;
    const pending = this.#stun.get(tid.toString('hex'));
    if (!pending) return;
    if (!verifyIntegrity(msg, pending.pwd)) {
      this.#log.warn({}, 'STUN answer without the node\'s signature: ignored');
      return;
    }
    pending.resolve(true);
  }
}
