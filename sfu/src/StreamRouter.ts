import type { types } from 'mediasoup';
import { InvalidStateError, TypedEmitter, type Logger } from '@cascade/protocol';
import { MEDIA_CODECS } from './mediaCodecs.js';
import type { WorkerPool } from './WorkerPool.js';

export interface StreamRouterOptions {
  streamId: string;
  /** Consumers on one router before the next viewer goes to a router on another worker. */
  consumersPerRouter: number;
}

export type StreamRouterEvents = {
  listenererror: [event: string, error: unknown];
};
export type StreamRouterObserverEvents = {
  newrouter: [router: types.Router];
  close: [];
  listenererror: [event: string, error: unknown];
};

interface RouterSlot {
  router: types.Router;
  consumers: number;
}

/**
 * One stream's routers on this node. Source producers (broadcaster or parent pipe) live on
 * the primary router; when it has `consumersPerRouter` consumers, further viewers go to a
 * router on another worker, fed by pipeToRouter, so one stream can use every core.
 */
export class StreamRouter extends TypedEmitter<StreamRouterEvents> {
  readonly observer = new TypedEmitter<StreamRouterObserverEvents>();
  readonly #pool: WorkerPool;
  readonly #options: StreamRouterOptions;
  readonly #log: Logger;
  #primary: RouterSlot | undefined;
  #creatingPrimary: Promise<RouterSlot> | undefined;
  readonly #fanout = new Map<types.Router, RouterSlot>();
  #closed = false;

  constructor(pool: WorkerPool, options: StreamRouterOptions, deps: { logger: Logger }) {
    super();
    this.#pool = pool;
    this.#options = options;
    this.#log = deps.logger.child({ component: 'StreamRouter', streamId: options.streamId });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get routers(): types.Router[] {
    return [...(this.#primary ? [this.#primary.router] : []), ...this.#fanout.keys()];
  }

  get consumerCount(): number {
    let n = this.#primary?.consumers ?? 0;
    for (const s of this.#fanout.values()) n += s.consumers;
    return n;
  }

  /** The router that holds the stream's source producers (created on first use). */
  async primary(): Promise<types.Router> {
    return (await this.#primarySlot()).router;
  }

  /** rtpCapabilities are the same on every router: they come from MEDIA_CODECS. */
  async rtpCapabilities(): Promise<types.RtpCapabilities> {
    return (await this.primary()).rtpCapabilities;
  }

  /** A router for one more consumer, spilling to another worker when the current ones are full. */
  async routerForConsumer(): Promise<types.Router> {
    const primary = await this.#primarySlot();
    const slots = [primary, ...this.#fanout.values()];
    const open = slots.filter((s) => s.consumers < this.#options.consumersPerRouter);
    if (open.length > 0) return open.reduce((a, b) => (b.consumers < a.consumers ? b : a)).router;
    const used = new Set(slots.map((s) => s.router.appData.worker as types.Worker));
    let worker: types.Worker;
    try {
      worker = this.#pool.leastLoaded(used);
    } catch {
      // Every worker already has a router of this stream: share the least busy one.
      return slots.reduce((a, b) => (b.consumers < a.consumers ? b : a)).router;
    }
    const router = await this.#createRouter(worker);
    const slot = { router, consumers: 0 };
    this.#fanout.set(router, slot);
    router.observer.once('close', () => this.#fanout.delete(router));
    this.#log.info({ routers: this.#fanout.size + 1 }, 'stream spilled to another worker');
    return router;
  }

  /**
   * The id under which `producer` (a source on the primary router) can be consumed on
   * `router`, piping it there first if needed. pipeToRouter keeps the producer id.
   */
  async ensureProducer(router: types.Router, producer: types.Producer): Promise<string> {
    if (this.#closed) throw new InvalidStateError('stream router closed');
    const primary = await this.primary();
    if (router === primary) return producer.id;
    const piped = router.appData.piped as Map<string, Promise<void>>;
    let p = piped.get(producer.id);
    if (!p) {
      p = primary.pipeToRouter({ producerId: producer.id, router }).then(() => undefined);
      piped.set(producer.id, p);
      producer.observer.once('close', () => piped.delete(producer.id));
      p.catch(() => piped.delete(producer.id));
    }
    await p;
    return producer.id;
  }

  /** Consumers (viewer or pipe) count against their router's share. */
  addConsumer(router: types.Router, delta: 1 | -1): void {
    const slot = this.#primary?.router === router ? this.#primary : this.#fanout.get(router);
    if (slot) slot.consumers = Math.max(0, slot.consumers + delta);
    this.#pool.addLoad(router.appData.worker as types.Worker, delta);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.routers) r.close();
    this.#fanout.clear();
    this.#primary = undefined;
    this.observer.safeEmit('close');
  }

  async #primarySlot(): Promise<RouterSlot> {
    if (this.#closed) throw new InvalidStateError('stream router closed');
    if (this.#primary) return this.#primary;
    if (!this.#creatingPrimary) {
      this.#creatingPrimary = (async () => {
        const router = await this.#createRouter(this.#pool.leastLoaded());
        const slot = { router, consumers: 0 };
        this.#primary = slot;
        router.observer.once('close', () => {
          if (this.#primary !== slot) return;
          this.#primary = undefined;
          // Its worker died: sources and sessions on it are gone (they learn from their own
          // close events); the next use creates a primary router on a live worker.
          if (!this.#closed) this.#log.warn({}, 'primary router closed (worker died?)');
        });
        return slot;
      })().finally(() => {
        this.#creatingPrimary = undefined;
      });
    }
    return this.#creatingPrimary;
  }

  async #createRouter(worker: types.Worker): Promise<types.Router> {
    const router = await worker.createRouter({
      mediaCodecs: MEDIA_CODECS,
      appData: { worker, streamId: this.#options.streamId, piped: new Map<string, Promise<void>>() },
    });
    if (this.#closed) {
      router.close();
      throw new InvalidStateError('stream router closed');
    }
    this.observer.safeEmit('newrouter', router);
    return router;
  }
}
