import type { types } from 'mediasoup';
import { CascadeError, InvalidStateError, TypedEmitter, type Logger } from '@cascade/protocol';
import type { MediasoupModule } from './loadMediasoup.js';

export interface WorkerPoolOptions {
  numWorkers: number;
  logLevel: types.WorkerLogLevel;
  rtcMinPort: number;
  rtcMaxPort: number;
  /**
   * Serve every WebRTC transport of a worker on one UDP and one TCP port (mediasoup's
   * WebRtcServer), so that a node behind a firewall or a home router opens one port, not a
   * range. Worker i listens on `port + i`; port 0 takes a free one from the worker's range.
   * Absent: each transport gets its own ports from the range.
   */
  webRtcServer?: { listenIps: { ip: string; announcedIp: string }[]; port: number };
}

export type WorkerPoolEvents = {
  /** A worker died and was replaced; routers on it are gone. */
  workerdied: [dead: types.Worker, replacement: types.Worker | undefined];
  listenererror: [event: string, error: unknown];
};
export type WorkerPoolObserverEvents = {
  newworker: [worker: types.Worker];
  close: [];
  listenererror: [event: string, error: unknown];
};

/**
 * The node's mediasoup workers (one per core by default). A worker that dies is replaced
 * in its slot so the node keeps its capacity; owners listen to `workerdied` to rebuild
 * what lived on it.
 */
export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  readonly observer = new TypedEmitter<WorkerPoolObserverEvents>();
  readonly #ms: MediasoupModule;
  readonly #options: WorkerPoolOptions;
  readonly #log: Logger;
  readonly #workers: (types.Worker | undefined)[] = [];
  /** Load per worker, maintained by the owners of routers (consumers + producers). */
  readonly #load = new Map<types.Worker, number>();
  readonly #servers = new Map<types.Worker, types.WebRtcServer>();
  #closed = false;

  static async create(ms: MediasoupModule, options: WorkerPoolOptions, deps: { logger: Logger }): Promise<WorkerPool> {
    const pool = new WorkerPool(ms, options, deps.logger);
    try {
      await Promise.all(Array.from({ length: options.numWorkers }, (_, i) => pool.#spawn(i)));
    } catch (err) {
      pool.close();
      throw err;
    }
    return pool;
  }

  private constructor(ms: MediasoupModule, options: WorkerPoolOptions, logger: Logger) {
    super();
    this.#ms = ms;
    this.#options = options;
    this.#log = logger.child({ component: 'WorkerPool' });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get workers(): types.Worker[] {
    return this.#workers.filter((w): w is types.Worker => !!w && !w.closed);
  }

  /** The live worker with the least load; `exclude` lets a caller spread over workers. */
  leastLoaded(exclude: ReadonlySet<types.Worker> = new Set()): types.Worker {
    if (this.#closed) throw new InvalidStateError('worker pool closed');
    let best: types.Worker | undefined;
    let bestLoad = Infinity;
    for (const w of this.workers) {
      if (exclude.has(w)) continue;
      const l = this.#load.get(w) ?? 0;
      if (l < bestLoad) {
        best = w;
        bestLoad = l;
      }
    }
    if (!best) throw new CascadeError('CASCADE_ERR_MEDIA_WORKER_DIED', 'no live mediasoup worker');
    return best;
  }

  /** The worker's WebRtcServer, when the pool runs them. */
  webRtcServerOf(worker: types.Worker): types.WebRtcServer | undefined {
    return this.#servers.get(worker);
  }

  /** UDP port of each worker's WebRtcServer, slot order (empty without them). */
  async mediaPorts(): Promise<number[]> {
    const ports: number[] = [];
    for (const w of this.workers) {
      const server = this.#servers.get(w);
      if (!server) continue;
      const dump = (await server.dump()) as unknown as { udpSockets: { port: number }[] };
      if (dump.udpSockets[0]) ports.push(dump.udpSockets[0].port);
    }
    return ports;
  }

  addLoad(worker: types.Worker, delta: number): void {
    if (!this.#load.has(worker)) return;
    this.#load.set(worker, Math.max(0, (this.#load.get(worker) ?? 0) + delta));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w?.close();
    this.#workers.length = 0;
    this.#load.clear();
    this.#servers.clear();
    this.observer.safeEmit('close');
  }

  async #spawn(slot: number): Promise<types.Worker> {
    const o = this.#options;
    const worker = await this.#ms.createWorker({
      logLevel: o.logLevel,
      rtcMinPort: o.rtcMinPort,
      rtcMaxPort: o.rtcMaxPort,
      logTags: ['info', 'ice', 'dtls', 'rtp', 'srtp', 'rtcp'],
    });
    if (this.#closed) {
      worker.close();
      throw new InvalidStateError('worker pool closed');
    }
    if (o.webRtcServer) {
      const port = o.webRtcServer.port > 0 ? o.webRtcServer.port + slot : undefined;
      try {
        const server = await worker.createWebRtcServer({
          listenInfos: o.webRtcServer.listenIps.flatMap((l) =>
            (['udp', 'tcp'] as const).map((protocol) => ({ protocol, ip: l.ip, announcedIp: l.announcedIp || undefined, ...(port ? { port } : {}) })),
          ),
        });
        this.#servers.set(worker, server);
      } catch (err) {
        worker.close();
        throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', `cannot listen for media on ${port ? `port ${port}` : 'a port of the range'} (UDP and TCP): ${(err as Error).message}`, { cause: err });
      }
    }
    this.#workers[slot] = worker;
    this.#load.set(worker, 0);
    this.#log.info({ pid: worker.pid, slot }, 'mediasoup worker started');
    worker.on('died', (error) => void this.#onDied(slot, worker, error));
    this.observer.safeEmit('newworker', worker);
    return worker;
  }

  async #onDied(slot: number, worker: types.Worker, error: Error): Promise<void> {
    this.#log.error({ err: error, pid: worker.pid, slot }, 'mediasoup worker died');
    this.#load.delete(worker);
    this.#servers.delete(worker);
    this.#workers[slot] = undefined;
    if (this.#closed) return;
    let replacement: types.Worker | undefined;
    for (let attempt = 0; attempt < 5 && !this.#closed; attempt++) {
      try {
        replacement = await this.#spawn(slot);
        break;
      } catch (err) {
        this.#log.error({ err, slot, attempt }, 'cannot replace mediasoup worker');
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
    this.safeEmit('workerdied', worker, replacement);
  }
}
