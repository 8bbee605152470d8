import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../version.js';
import { TypedEmitter } from '../TypedEmitter.js';
import type { Logger } from '../Logger.js';
import { rejectUpgrade, type UpgradeRouter } from './httpUpgrade.js';
import { PingLiveness, type LivenessClock } from './PingLiveness.js';

export interface WsEndpointOptions {
  path: string;
  maxConnections: number;
  /** Ping period. */
  pingIntervalMs: number;
  /**
   * A client whose last pong is older than this is terminated (ms). Time-based rather than
   * "N pongs missed" so that a slow link (pings in flight) is not mistaken for a dead one.
   * Default 2 × pingIntervalMs.
   */
  deadAfterMs?: number;
  /**
   * Silence after which a client is reported (`silent` event) but kept: a slow or lossy link
   * (TCP retransmitting) looks like this for a moment, a dead peer for good. Default: never.
   */
  suspectAfterMs?: number;
  /** Hard frame limit enforced by ws (closes with 1009). Keep it above the protocol limit so
   *  that moderately oversized messages get a coded error instead. */
  maxPayloadBytes: number;
}

export type WsEndpointEvents = {
  connection: [ws: WebSocket, req: IncomingMessage];
  /** A client has not answered pings for suspectAfterMs (once per silence). */
  silent: [ws: WebSocket, silentMs: number];
  listenererror: [event: string, error: unknown];
};

export type EndpointState = 'running' | 'closing' | 'closed';

/**
 * A WebSocket endpoint on a shared HTTP server: protocol version check before the upgrade,
 * connection limit, ping/pong liveness, and an orderly close (running → closing → closed)
 * during which new upgrades get 503.
 */
export class WsEndpoint extends TypedEmitter<WsEndpointEvents> {
  readonly #wss: WebSocketServer;
  readonly #log: Logger;
  readonly #liveness: PingLiveness<WebSocket>;
  readonly #timer: ReturnType<typeof setInterval>;
  #state: EndpointState = 'running';

  constructor(router: UpgradeRouter, options: WsEndpointOptions, deps: { logger: Logger; clock?: LivenessClock }) {
    super();
    this.#log = deps.logger.child({ component: 'WsEndpoint', path: options.path });
    this.#liveness = new PingLiveness(
      { deadAfterMs: options.deadAfterMs ?? 2 * options.pingIntervalMs, roundIntervalMs: options.pingIntervalMs, ...(options.suspectAfterMs !== undefined ? { suspectAfterMs: options.suspectAfterMs } : {}) },
      deps.clock ? { clock: deps.clock } : {},
    );
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes, clientTracking: true });
    router.route(options.path, (req, socket, head, url) => {
      if (this.#state !== 'running') return rejectUpgrade(socket, 'CASCADE_ERR_NODE_SHUTTING_DOWN');
      if (this.#wss.clients.size >= options.maxConnections) {
        return rejectUpgrade(socket, 'CASCADE_ERR_NODE_CAPACITY', 'connection limit reached');
      }
      const v = Number(url.searchParams.get('v'));
      if (!SUPPORTED_PROTOCOL_VERSIONS.includes(v)) {
        this.#log.warn({ v: url.searchParams.get('v') }, 'refused unsupported protocol version');
        return rejectUpgrade(socket, 'CASCADE_ERR_PROTOCOL_VERSION', `supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(',')}`);
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        this.#liveness.heard(ws);
        ws.on('pong', () => this.#liveness.heard(ws));
        // ws reports oversized frames and protocol violations here; the close follows.
        ws.on('error', (err) => this.#log.warn({ err }, 'websocket error'));
        this.safeEmit('connection', ws, req);
      });
    });
    this.#timer = setInterval(() => this.#heartbeat(), options.pingIntervalMs);
    this.#timer.unref();
  }

  get state(): EndpointState {
    return this.#state;
  }

  /** How long `ws` has not answered a ping (ms). */
  silentFor(ws: WebSocket): number {
    return this.#liveness.silentFor(ws);
  }

  /** Ping `ws` now: true once it answers, false if it does not within `timeoutMs`. */
  probe(ws: WebSocket, timeoutMs: number): Promise<boolean> {
    if (ws.readyState !== ws.OPEN) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        ws.off('pong', onPong);
        ws.off('close', onClose);
        resolve(ok);
      };
      const onPong = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      ws.on('pong', onPong);
      ws.on('close', onClose);
      try {
        ws.ping();
      } catch {
        done(false);
      }
    });
  }

  get connections(): number {
    return this.#wss.clients.size;
  }

  /** Refuse new connections, close open ones with `code`, resolve once all are gone. */
  async close(code = 1001, reason = 'shutting down', timeoutMs = 2000): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'closing';
    clearInterval(this.#timer);
    for (const ws of this.#wss.clients) ws.close(code, reason);
    const deadline = Date.now() + timeoutMs;
    while (this.#wss.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.#wss.clients) ws.terminate();
    await new Promise<void>((r) => this.#wss.close(() => r()));
    this.#state = 'closed';
  }

  #heartbeat(): void {
    this.#liveness.round();
    for (const ws of this.#wss.clients) {
      const { verdict, silentMs } = this.#liveness.verdict(ws);
      if (verdict === 'dead') {
        this.#log.info({ silentMs }, 'terminating connection that stopped answering pings');
        ws.terminate();
        continue;
      }
      if (verdict === 'silent' && ws.readyState === ws.OPEN) this.safeEmit('silent', ws, silentMs);
      try {
        ws.ping();
      } catch {
        ws.terminate();
      }
    }
  }
}
