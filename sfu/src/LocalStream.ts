import type { types } from 'mediasoup';
import { TypedEmitter, type Logger, type MediaKind, type StreamInfo, type StreamState } from '@cascade/protocol';
import { StreamRouter } from './StreamRouter.js';
import { LayerDemand } from './layers/LayerDemand.js';
import { layerCount } from './layers/quality.js';
import type { WorkerPool } from './WorkerPool.js';

export type LocalStreamEvents = {
  /** A source producer appeared (first one, or one replacing another of the same kind). */
  sourceadd: [producer: types.Producer];
  statechange: [state: StreamState];
  depthchange: [depth: number];
  /** Nobody uses the stream any more (no viewer, no child, no publisher). */
  idle: [];
  /** The last viewer setting up a consumer of a new video source here is done (see viewerVideoPending). */
  viewersready: [];
  '@close': [];
  listenererror: [event: string, error: unknown];
};
export type LocalStreamObserverEvents = {
  close: [];
  listenererror: [event: string, error: unknown];
};

export interface LocalStreamOptions {
  id: string;
  consumersPerRouter: number;
  /** Distance from the origin: 0 on the origin, parent's + 1 on a relay. */
  depth: number;
  state: StreamState;
  title: string;
  createdAt: number;
}

/**
 * A stream as one node carries it: its routers, its current source producer per kind, its
 * state, and who uses it here (viewer sessions and child pipes). Sources are replaced
 * make-before-break: the new producer is announced before the old one is closed, so
 * consumers are re-created while the old ones still play.
 */
export class LocalStream extends TypedEmitter<LocalStreamEvents> {
  readonly observer = new TypedEmitter<LocalStreamObserverEvents>();
  readonly id: string;
  readonly router: StreamRouter;
  /** The video layers wanted here, by viewers and child relays (what a relay asks its parent for). */
  readonly layers: LayerDemand;
  /** Shown to viewers; known from the publisher (origin) or from the assignment (relay). */
  title: string;
  /** The node this stream is pulled from (null on the origin or before a relay's first pull). */
  parentNodeId: string | null = null;
  /** The controller's pipe ticket for the current parent: proof, in heartbeats, that the controller placed this edge. */
  parentTicket: string | undefined;
  /** Bytes received from the current parent since its pipe opened (a child's confirmation, in heartbeats). */
  bytesFromParent: number | undefined;
  readonly createdAt: number;
  readonly #sources = new Map<MediaKind, types.Producer>();
  /** Viewer sessions; child pipe sessions with the relay each feeds. */
  readonly #users = { viewers: new Set<string>(), children: new Map<string, string>() };
  /** Viewers setting up a consumer of a new video source: created, announced, not yet resumed. */
  readonly #viewersSettingUp = new Set<symbol>();
  /** The wait of the viewers ready to take a first key frame together (see whenViewersReadyTogether). */
  #together: Promise<void> | undefined;
  /** Until when viewers subscribing wait for new sources (see markSourcesStale); 0: the sources are fresh. */
  #staleUntil = 0;
  #state: StreamState;
  #depth: number;
  #closed = false;

  constructor(pool: WorkerPool, options: LocalStreamOptions, deps: { logger: Logger }) {
    super();
    this.id = options.id;
    this.title = options.title;
    this.createdAt = options.createdAt;
    this.#state = options.state;
    this.#depth = options.depth;
    this.router = new StreamRouter(pool, { streamId: options.id, consumersPerRouter: options.consumersPerRouter }, deps);
    this.layers = new LayerDemand(() => this.videoLayers);
  }

  /** Spatial layers of the current video source (0 without one). */
  get videoLayers(): number {
    const video = this.#sources.get('video');
    return video ? layerCount(video) : 0;
  }

  get closed(): boolean {
    return this.#closed;
  }
  get state(): StreamState {
    return this.#state;
  }
  get depth(): number {
    return this.#depth;
  }
  get sources(): types.Producer[] {
    return [...this.#sources.values()];
  }
  info(): StreamInfo {
    return { id: this.id, title: this.title, state: this.#state, createdAt: this.createdAt };
  }

  get viewerCount(): number {
    return this.#users.viewers.size;
  }
  /** Relays fed by pipe: a relay moving between pipes (make-before-break) counts once. */
  get childCount(): number {
    return this.childNodeIds.length;
  }
  /** The relays fed by pipe (one id per relay, even while a move runs two pipes to it). */
  get childNodeIds(): string[] {
    return [...new Set(this.#users.children.values())];
  }

  setState(state: StreamState): void {
    if (this.#closed || state === this.#state) return;
    this.#state = state;
    this.safeEmit('statechange', state);
  }

  setDepth(depth: number): void {
    if (this.#closed || depth === this.#depth) return;
    this.#depth = depth;
    this.safeEmit('depthchange', depth);
  }

  /**
   * The sources here have stopped (a relay's parent went quiet or was lost) and new ones are
   * being sought: viewers subscribing within `maxMs` wait for them (whenSourcesFresh) instead of
   * taking consumers of sources about to close. Traced in the inner-relay freeze benchmark:
   * viewers of the frozen relay arrived at its child as it changed parents, took the old
   * source, lost it 30 ms later, asked for their resumes in vain and got the new source's
   * consumers after the child had released its new parent's first key frame: they waited for
   * the next one, 1.07 s after the freeze against 0.71 s for the child's own viewers.
   */
  markSourcesStale(maxMs: number): void {
    if (this.#closed) return;
    this.#staleUntil = Math.max(this.#staleUntil, Date.now() + maxMs);
  }

  /** Resolves at once unless the sources are stale (see markSourcesStale): then when a new video source comes, or at the deadline. */
  whenSourcesFresh(): Promise<void> {
    const wait = this.#staleUntil - Date.now();
    if (this.#closed || wait <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off('sourceadd', onSource);
        this.off('@close', done);
        resolve();
      };
      const onSource = (p: types.Producer) => (p.kind === 'video' ? done() : undefined);
      const timer = setTimeout(done, wait);
      timer.unref?.();
      this.on('sourceadd', onSource);
      this.on('@close', done);
    });
  }

  /** Make `producer` the source of its kind; a previous source of that kind closes after. */
  setSource(producer: types.Producer): void {
    if (this.#closed) {
      producer.close();
      return;
    }
    if (producer.kind === 'video') this.#staleUntil = 0;
    const old = this.#sources.get(producer.kind);
    this.#sources.set(producer.kind, producer);
    producer.observer.once('close', () => {
      if (this.#sources.get(producer.kind) === producer) this.#sources.delete(producer.kind);
    });
    this.safeEmit('sourceadd', producer);
    if (old && old !== producer) old.close();
    if (producer.kind === 'video') this.layers.update();
  }

  /**
   * A viewer here starts setting up a consumer of a new video source; call the function returned
   * once it resumed it (or gave up). A relay whose parent changed holds the new parent's video
   * until then (whenViewersReady), so that the first key frame it asks for reaches every viewer.
   */
  viewerVideoPending(): () => void {
    const token = Symbol('viewer video');
    this.#viewersSettingUp.add(token);
    return () => {
      if (this.#viewersSettingUp.delete(token) && this.#viewersSettingUp.size === 0) this.safeEmit('viewersready');
    };
  }

  /** How many viewers here are setting up a consumer of a new video source (see viewerVideoPending). */
  get viewersSettingUp(): number {
    return this.#viewersSettingUp.size;
  }

  /**
   * Resolves once no viewer here is setting up a consumer of a new video source (see
   * viewerVideoPending), and not before `settleMs` (viewers moving here from a failed node arrive
   * one after the other: one that starts within it is waited for too), or after `maxMs` in all.
   * The pause counts from the call, not from the last viewer ready: after a long wait everyone
   * has arrived, and a pause then only delayed them all (traced: 80 ms in the inner-freeze
   * benchmark's slowest rounds).
   */
  whenViewersReady(maxMs: number, settleMs = 0): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const settledAt = Date.now() + settleMs;
    return new Promise((resolve) => {
      let settle: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        clearTimeout(settle);
        this.off('viewersready', check);
        this.off('@close', done);
        resolve();
      };
      const check = () => {
        clearTimeout(settle);
        if (this.#viewersSettingUp.size > 0) return;
        const left = settledAt - Date.now();
        if (left <= 0) return done();
        // Once more after the pause: someone may have started meanwhile.
        settle = setTimeout(check, left);
        settle.unref?.();
      };
      const timer = setTimeout(done, maxMs);
      timer.unref?.();
      this.on('viewersready', check);
      this.on('@close', done);
      check();
    });
  }

  /**
   * whenViewersReady(maxMs) shared by every viewer that calls it before it resolves: the viewers
   * ready for a first key frame go together, once nobody is still setting up or maxMs after the
   * first of them began to wait. Each waiting its own maxMs, the first went alone and took the
   * key frame from viewers ready a moment later, which then waited for the next one (traced in
   * the flat-tree freeze benchmark: a werift viewer resumed alone 20 to 40 ms before two pages
   * that had been ready for 130 ms, and the pages came back 350 ms later).
   */
  whenViewersReadyTogether(maxMs: number): Promise<void> {
    if (!this.#together) {
      const wait = this.whenViewersReady(maxMs).finally(() => {
        if (this.#together === wait) this.#together = undefined;
      });
      this.#together = wait;
    }
    return this.#together;
  }

  addViewer(sessionId: string): void {
    this.#users.viewers.add(sessionId);
  }

  addChild(sessionId: string, nodeId: string): void {
    this.#users.children.set(sessionId, nodeId);
  }

  /** The sessions whose pipes feed relay `nodeId`, oldest first. */
  childSessions(nodeId: string): string[] {
    return [...this.#users.children].filter(([, n]) => n === nodeId).map(([sessionId]) => sessionId);
  }

  removeUser(kind: 'viewers' | 'children', id: string): void {
    if (!this.#users[kind].delete(id)) return;
    if (this.#users.viewers.size === 0 && this.#users.children.size === 0) this.safeEmit('idle');
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sources.clear();
    this.layers.close();
    this.router.close();
    this.#users.viewers.clear();
    this.#users.children.clear();
    this.#viewersSettingUp.clear();
    this.safeEmit('@close');
    this.observer.safeEmit('close');
  }
}
