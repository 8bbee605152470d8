import type { types } from 'mediasoup';
import { InvalidStateError, TypedEmitter, type Logger } from '@cascade/protocol';
import { MEDIA_CODECS } from './mediaCodecs.js';
import type { WorkerPool } from './WorkerPool.js';
import type { RouterData, StreamRouterHandle } from './appData.js';

export interface StreamRouterOptions {
  streamId: string;
  /** Consumers on one router before the next viewer goes to a router on another worker. */
  consumersPerRouter: number;
}

export type StreamRouterEvents = {
  listenererror: [event: string, error: unknown];
};
export type StreamRouterObserverEvents = {
  newrouter: [router: StreamRouterHandle];
  close: [];
  listenererror: [event: string, error: unknown];
};

interface RouterSlot {
  router: StreamRouterHandle;
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
  readonly #fanout = new Map<StreamRouterHandle, RouterSlot>();
  /** Routers numbering codecs as some clients do (WHEP players), by numbering. */
  readonly #numbered = new Map<string, Promise<RouterSlot>>();
  readonly #numberedRouters = new Map<StreamRouterHandle, RouterSlot>();
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

  get routers(): StreamRouterHandle[] {
    return [...(this.#primary ? [this.#primary.router] : []), ...this.#fanout.keys(), ...this.#numberedRouters.keys()];
  }

  get consumerCount(): number {
    let n = this.#primary?.consumers ?? 0;
    for (const s of this.#fanout.values()) n += s.consumers;
    return n;
  }

  /** The router that holds the stream's source producers (created on first use). */
  async primary(): Promise<StreamRouterHandle> {
    return (await this.#primarySlot()).router;
  }

  /** rtpCapabilities are the same on every router: they come from MEDIA_CODECS. */
  async rtpCapabilities(): Promise<types.RtpCapabilities> {
    return (await this.primary()).rtpCapabilities;
  }

  /** A router for one more consumer, spilling to another worker when the current ones are full. */
  async routerForConsumer(): Promise<StreamRouterHandle> {
    const primary = await this.#primarySlot();
    const slots = [primary, ...this.#fanout.values()];
    const open = slots.filter((s) => s.consumers < this.#options.consumersPerRouter);
    if (open.length > 0) return open.reduce((a, b) => (b.consumers < a.consumers ? b : a)).router;
    const used = new Set(slots.map((s) => s.router.appData.worker));
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
   * `router`, piping it there first if needed. pipeToRouter keeps the producer id; a router on
   * the primary's own worker (a numbered one, on a one-worker node) cannot hold a second
   * producer with that id, so the pipe is made by hand and the copy gets its own id.
   */
  async ensureProducer(router: StreamRouterHandle, producer: types.Producer): Promise<string> {
    if (this.#closed) throw new InvalidStateError('stream router closed');
    const primary = await this.primary();
    if (router === primary) return producer.id;
    const piped = router.appData.piped;
    let p = piped.get(producer.id);
    if (!p) {
      p =
        primary.appData.worker === router.appData.worker
          ? this.#pipeWithinWorker(primary, router, producer)
          : primary.pipeToRouter({ producerId: producer.id, router }).then(() => producer.id);
      piped.set(producer.id, p);
      producer.observer.once('close', () => piped.delete(producer.id));
      p.catch(() => piped.delete(producer.id));
    }
    return p;
  }

  async #pipeWithinWorker(primary: StreamRouterHandle, router: StreamRouterHandle, producer: types.Producer): Promise<string> {
    const a = router.appData;
    a.pipePair ??= (async () => {
      const from = await primary.createPipeTransport({ listenIp: { ip: '127.0.0.1' } });
      const to = await router.createPipeTransport({ listenIp: { ip: '127.0.0.1' } });
      await from.connect({ ip: '127.0.0.1', port: to.tuple.localPort });
      await to.connect({ ip: '127.0.0.1', port: from.tuple.localPort });
      router.observer.once('close', () => from.close());
      return { from, to };
    })();
    const { from, to } = await a.pipePair;
    const consumer = await from.consume({ producerId: producer.id });
    const copy = await to.produce({ kind: consumer.kind, rtpParameters: consumer.rtpParameters, paused: consumer.producerPaused });
    consumer.observer.once('close', () => copy.close());
    copy.observer.once('close', () => consumer.close());
    consumer.on('producerpause', () => void copy.pause());
    consumer.on('producerresume', () => void copy.resume());
    return copy.id;
  }

  /**
   * A router whose codecs carry the payload types a client chose (`codecs`: the stream's own
   * codecs, renumbered). mediasoup sends every consumer the numbers of its router, and a client
   * that made the SDP offer (a WHEP player) only receives with its own. One such router per
   * numbering, shared by the clients that number alike (players of one browser), fed by
   * pipeToRouter like any other. Without RTX: its numbers could not be the client's.
   */
  async routerNumbering(codecs: types.RtpCodecCapability[]): Promise<StreamRouterHandle> {
    if (this.#closed) throw new InvalidStateError('stream router closed');
    const key = codecs.map((c) => `${c.mimeType}/${c.clockRate}/${c.preferredPayloadType}`).sort().join(',');
    let slot = this.#numbered.get(key);
    if (!slot) {
      slot = this.#createRouter(this.#pool.leastLoaded(), codecs).then((router) => {
        const s = { router, consumers: 0 };
        this.#numberedRouters.set(router, s);
        router.observer.once('close', () => {
          this.#numberedRouters.delete(router);
          this.#numbered.delete(key);
        });
        this.#log.info({ numbering: key }, 'router for a client numbering codecs its own way');
        return s;
      });
      this.#numbered.set(key, slot);
      slot.catch(() => this.#numbered.delete(key));
    }
    return (await slot).router;
  }

  /** Consumers (viewer or pipe) count against their router's share. */
  addConsumer(router: StreamRouterHandle, delta: 1 | -1): void {
    const slot = this.#primary?.router === router ? this.#primary : (this.#fanout.get(router) ?? this.#numberedRouters.get(router));
    if (slot) slot.consumers = Math.max(0, slot.consumers + delta);
    this.#pool.addLoad(router.appData.worker, delta);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.routers) r.close();
    this.#fanout.clear();
    this.#numberedRouters.clear();
    this.#numbered.clear();
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

  async #createRouter(worker: types.Worker, mediaCodecs: types.RtpCodecCapability[] = MEDIA_CODECS): Promise<StreamRouterHandle> {
    const router = await worker.createRouter<RouterData>({
      mediaCodecs,
      appData: { worker, streamId: this.#options.streamId, piped: new Map<string, Promise<string>>() },
    });
    if (this.#closed) {
      router.close();
      throw new InvalidStateError('stream router closed');
    }
    this.observer.safeEmit('newrouter', router);
    return router;
  }
}
