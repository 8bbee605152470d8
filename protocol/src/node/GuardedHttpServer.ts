import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CascadeError, type ErrorCode } from '../errors.js';
import { LogBudget } from '../LogBudget.js';
import type { Logger } from '../Logger.js';
import { TypedEmitter } from '../TypedEmitter.js';

export interface HttpServerLimits {
  /** Complete request headers (a WebSocket handshake included) must arrive within this (ms). */
  headersTimeoutMs: number;
  /** A whole request, body included (ms). */
  requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this (ms). */
  keepAliveTimeoutMs: number;
  /** Open TCP connections per client address (HTTP and upgraded WebSockets together); 0: no limit. */
  maxConnectionsPerAddress: number;
  /** Client addresses the per-address limit does not apply to (a reverse proxy). */
  unlimitedAddresses: readonly string[];
}

export type GuardedHttpServerObserverEvents = {
  /** A connection was refused because its address holds the maximum already. */
  refused: [reason: 'per_address'];
  /** A client was disconnected for a malformed request or for not sending it in time. */
  clienterror: [kind: 'timeout' | 'malformed'];
  listenererror: [event: string, error: unknown];
};

/** IPv4 clients of a dual-stack socket appear as ::ffff:a.b.c.d; they are the same address. */
export function clientAddress(socket: { remoteAddress?: string | undefined }): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 429: 'Too Many Requests' };

/** A complete HTTP/1.1 answer with a coded JSON body, for a socket no request handler will see. */
function rawResponse(code: ErrorCode, detail?: string): string {
  const err = new CascadeError(code, detail);
  const body = JSON.stringify({ statusCode: err.status, code: err.code, message: err.message });
  return `HTTP/1.1 ${err.status} ${REASONS[err.status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * Node's HTTP server with Cascade's own deadlines and a per-address connection limit, so that
 * half-open handshakes, slow requests and one address opening thousands of sockets cost little:
 * Node's defaults are 60 s for headers (checked every 30 s) and no limit per address.
 */
export class GuardedHttpServer {
  readonly server: http.Server;
  readonly observer = new TypedEmitter<GuardedHttpServerObserverEvents>();
  readonly #limits: HttpServerLimits;
  readonly #unlimited: Set<string>;
  readonly #perAddress = new Map<string, number>();
  /** Sockets refused at connection time: no request or upgrade on them is served. */
  readonly #refused = new WeakSet<Duplex>();
  readonly #log: Logger;
  readonly #logBudget = new LogBudget(1, { burst: 5 });
  #open = 0;

  constructor(handler: http.RequestListener, limits: HttpServerLimits, deps: { logger: Logger }) {
    this.#limits = limits;
    this.#unlimited = new Set(limits.unlimitedAddresses.map((a) => clientAddress({ remoteAddress: a })));
    this.#log = deps.logger.child({ component: 'GuardedHttpServer' });
    this.server = http.createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        // Node requires requestTimeout ≥ headersTimeout (or 0).
        requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // How often those deadlines are checked (Node's default, 30 s, would let a socket linger that much longer).
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
      },
      (req, res) => {
        if (this.#refused.has(req.socket)) req.socket.destroy();
        else handler(req, res);
      },
    );
    // Before Node's own listener, so that a refused socket is marked before anything reads it.
    this.server.prependListener('connection', (socket: Socket) => this.#onConnection(socket));
    this.server.prependListener('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
      if (this.#refused.has(socket)) socket.destroy();
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#onClientError(err, socket));
  }

  /** Open TCP connections. */
  get connections(): number {
    return this.#open;
  }

  #onConnection(socket: Socket): void {
    const address = clientAddress(socket);
    const held = this.#perAddress.get(address) ?? 0;
    const max = this.#limits.maxConnectionsPerAddress;
    if (max > 0 && held >= max && !this.#unlimited.has(address)) {
      this.#refused.add(socket);
      this.observer.safeEmit('refused', 'per_address');
      const suppressed = this.#logBudget.take();
      if (suppressed !== undefined) this.#log.warn({ address, held, suppressed }, 'connection refused: too many from this address');
      socket.on('error', () => socket.destroy());
      socket.end(rawResponse('CASCADE_ERR_HTTP_TOO_MANY_CONNECTIONS', `at most ${max}`));
      // No request or upgrade on it is served (see the handlers above); it goes once the answer is out.
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.#open++;
    this.#perAddress.set(address, held + 1);
    socket.once('close', () => {
      this.#open--;
      const n = (this.#perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, n);
    });
  }

  /** What Node does by default (answer if nothing was sent yet, then destroy), with coded bodies and a metric. */
  #onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || this.#refused.has(socket)) {
      socket.destroy();
      return;
    }
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    this.observer.safeEmit('clienterror', timeout ? 'timeout' : 'malformed');
    const written = (socket as Socket).bytesWritten ?? 0;
    if (socket.writable && written === 0) {
      try {
        socket.write(timeout ? rawResponse('CASCADE_ERR_HTTP_TIMEOUT') : rawResponse('CASCADE_ERR_HTTP_BAD_REQUEST', err.code));
      } catch {
        // the socket is going anyway
      }
    }
    socket.destroy();
  }
}
