import { CascadeError, TypedEmitter, type Logger, type RelayParams } from '@cascade/protocol';
import type { ControlPlane, LocalStream, MediaNode } from '@cascade/sfu';
import { IntegrityForwarder } from './IntegrityForwarder.js';
import { ParentLossReporter } from './ParentLossReporter.js';
import { PipeIngress } from './PipeIngress.js';

export interface StreamPullerOptions {
  /** How long a stream is kept after its last viewer and child left (ms). */
  lingerMs: number;
  stallTimeoutMs: number;
  requestTimeoutMs: number;
}

export type StreamPullerEvents = {
  streamstart: [streamId: string, parentId: string];
  streamstop: [streamId: string];
  parentlost: [streamId: string, reason: string];
  listenererror: [event: string, error: unknown];
};

/** How long a stream opened for a ticketed viewer waits for its assignment (ms). */
const PENDING_ASSIGNMENT_MS = 10_000;
/** How long a planned move waits for the new pipe's media before switching anyway (ms). */
const MOVE_MEDIA_WAIT_MS = 2000;

/**
 * A new parent's video waits this long at most for this relay's viewers to take up its new
 * consumers (ms). The broadcaster sends a key frame at most every 350 ms (and Chrome none within
 * 300 ms of the last): the one the new pipe's start asks for, sent before the viewers' new
 * consumers are resumed, was lost to them, and they waited for the next slot. Traced in the
 * inner-freeze benchmark: key frame 17 ms after the new pipe, viewers resumed 100 to 200 ms
 * later, their first picture 350 ms after the pipe's. 600 rather than 400 (stop 33): the viewers
 * of the frozen relay, arriving here, had their transports up 370 to 560 ms after this relay's
 * new pipe; at 400 the video went without the slowest, and all of them waited for the next key
 * frame (1.10 to 1.20 s after the freeze, against 0.70 to 0.90 s for everyone at 600).
 */
const HOLD_FOR_VIEWERS_MS = 600;
/**
 * ... and not before this long (ms): viewers of the failed node arrive here too, one after the
 * other, and those that came after the release waited a slot more (traced: this relay's own
 * viewers at 340 ms, the failed relay's at 700). See LocalStream.whenViewersReady.
 */
const HOLD_SETTLE_MS = 80;

/**
 * Once the parent went quiet or was lost, viewers arriving here wait this long at most for the
 * next parent's sources before they subscribe (see LocalStream.markSourcesStale): a new parent
 * comes within 0.1 to 0.3 s (traced); a quiet parent that was not gone keeps its place, and they
 * take its sources at the deadline (ms).
 */
const FRESH_SOURCES_WAIT_MS = 800;

/**
 * What a relay carries: the streams the controller assigns, each pulled from its parent over a
 * pipe (make-before-break when the parent changes), reported lost when that pipe fails, and
 * dropped a while after its last viewer and child left.
 */
export class StreamPuller extends TypedEmitter<StreamPullerEvents> {
  readonly #node: MediaNode;
  readonly #control: ControlPlane;
  readonly #options: StreamPullerOptions;
  readonly #log: Logger;
  readonly #ingress = new Map<string, PipeIngress>();
  /** Per stream, the pull being set up right now and from which parent. */
  readonly #pulling = new Map<string, { parentId: string; done: Promise<void> }>();
  /** Per stream, the latest assignment: a pull that fails after a newer one started is not reported. */
  readonly #assignments = new Map<string, number>();
  readonly #lostParents: ParentLossReporter;
  readonly #linger = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #watched = new WeakSet<LocalStream>();
  /** Per stream carried, its digest channel passed on from the current parent. */
  readonly #forwarders = new WeakMap<LocalStream, IntegrityForwarder>();
  #draining = false;
  #closed = false;

  constructor(node: MediaNode, control: ControlPlane, options: StreamPullerOptions, deps: { logger: Logger }) {
    super();
    this.#node = node;
    this.#control = control;
    this.#options = options;
    this.#log = deps.logger.child({ component: 'StreamPuller' });
    this.#lostParents = new ParentLossReporter({}, { logger: deps.logger, report: (streamId, parentNodeId) => control.parentLost(streamId, parentNodeId) });
    node.on('streamclose', (s) => {
      clearTimeout(this.#linger.get(s.id));
      this.#linger.delete(s.id);
      this.#lostParents.recovered(s.id);
      this.#assignments.delete(s.id);
      this.#ingress.get(s.id)?.close();
      this.#ingress.delete(s.id);
    });
  }

  /** No new viewers (a draining relay refuses them; they are placed elsewhere). */
  drain(): void {
    this.#draining = true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#linger.values()) clearTimeout(t);
    this.#lostParents.close();
    for (const i of this.#ingress.values()) i.close();
    this.#ingress.clear();
  }

  /** Carry this stream from this parent (also how the controller moves us to a new parent). */
  async assign(params: RelayParams<'stream.assign'>): Promise<void> {
    const { stream: info, parent } = params;
    if (this.#closed) throw new CascadeError('CASCADE_ERR_NODE_SHUTTING_DOWN');
    const current = this.#ingress.get(info.id);
    if (current && !current.closed && current.parentId === parent.nodeId) return; // already there
    // The same assignment twice at once (the controller saw the parent die, and answered our own
    // report of it too): one pipe, not two in a row that would each replace the viewers' consumers.
    const pulling = this.#pulling.get(info.id);
    if (pulling?.parentId === parent.nodeId) return pulling.done;
    const done = this.#assign(params);
    const entry = { parentId: parent.nodeId, done };
    this.#pulling.set(info.id, entry);
    try {
      await done;
    } finally {
      if (this.#pulling.get(info.id) === entry) this.#pulling.delete(info.id);
    }
  }

  async #assign({ stream: info, parent, ticket }: RelayParams<'stream.assign'>): Promise<void> {
    const current = this.#ingress.get(info.id);
    const stream = this.#node.stream(info.id) ?? this.#node.openStream(info.id, { depth: 1, state: info.state, title: info.title, createdAt: info.createdAt });
    stream.title = info.title;
    this.#watchIdle(stream);
    const seq = (this.#assignments.get(info.id) ?? 0) + 1;
    this.#assignments.set(info.id, seq);
    // The controller has moved on: a loss report still waiting would name a parent it already replaced.
    this.#lostParents.cancel(info.id);
    // Viewers here whose picture stopped (a lost or silent parent) move onto the new pipe's
    // producers: its video waits until they can all take its first key frame (see HOLD_FOR_VIEWERS_MS).
    // So does a first pull: the controller assigns the stream as it places the first viewers here,
    // which arrive just after; a key frame asked for by the pipe alone was lost to them and held
    // back theirs (traced: the viewers of a frozen leaf, moving to a spare relay, ready 330 ms after
    // its pipe, got their first key frame 300 ms after that).
    // (A lost parent's pipe is gone already: parentNodeId says there was one.)
    const stopped = stream.viewerCount > 0 && (current ? current.closed || current.silent : stream.parentNodeId !== null);
    const hold = !current || stopped;
    if (current && (current.closed || current.silent)) stream.markSourcesStale(FRESH_SOURCES_WAIT_MS);
    let next: PipeIngress;
    try {
      next = await PipeIngress.open(
        this.#node,
        this.#control,
        { stream, parent, ticket, stallTimeoutMs: this.#options.stallTimeoutMs, timeoutMs: this.#options.requestTimeoutMs, holdVideo: hold, lowestFirst: stopped },
        { logger: this.#log },
      );
    } catch (err) {
      const code = err instanceof CascadeError ? err.code : 'unknown';
      // The parent refused, timed out or no longer has the stream. The tree says it feeds us, so
      // unless a newer assignment superseded this one the controller must hear it (and pick another).
      if (!this.#closed && !stream.closed && this.#assignments.get(info.id) === seq) {
        this.#log.warn({ err, code, streamId: info.id, parentId: parent.nodeId }, 'cannot pull the stream from the assigned parent; reporting it lost');
        this.#lostParents.lost(info.id, parent.nodeId);
      }
      throw new CascadeError('CASCADE_ERR_RELAY_PARENT_LOST', `cannot pull from ${parent.nodeId} (${code})`, { cause: err });
    }
    if (this.#closed || stream.closed) {
      next.close();
      return;
    }
    // Make-before-break: while the old parent still feeds us, switch only once the new pipe carries media.
    if (current && !current.closed && !hold) await next.waitForMedia(MOVE_MEDIA_WAIT_MS);
    if (next.closed) {
      // The new parent failed before taking over (its 'lost' came before anyone listened):
      // keep what still feeds us, and have the controller pick another parent.
      this.#log.warn({ streamId: info.id, parentId: parent.nodeId }, 'new parent lost before taking over');
      this.#lostParents.lost(info.id, parent.nodeId);
      return;
    }
    const replaced = this.#ingress.get(info.id);
    this.#ingress.set(info.id, next);
    next.adopt();
    if (hold) {
      const heldAt = Date.now();
      void stream.whenViewersReady(HOLD_FOR_VIEWERS_MS, HOLD_SETTLE_MS).then(() => {
        next.releaseVideo();
        this.#log.info({ streamId: info.id, parentId: parent.nodeId, heldMs: Date.now() - heldAt }, "new parent's video released: this relay's viewers are ready for its first key frame");
      });
    }
    this.#forwarder(stream).follow(next.digests, () => next.recentDigests()).catch(() => {});
    this.#lostParents.recovered(info.id);
    if (replaced && replaced !== next) replaced.close();
    next.on('lost', (reason) => this.#parentLost(info.id, next, reason));
    // Quiet but not closed: the controller checks the parent, and if it is gone assigns another
    // (make-before-break: this pipe stays until the new one carries media).
    next.on('silent', () => {
      stream.markSourcesStale(FRESH_SOURCES_WAIT_MS);
      this.#control.parentSilent(info.id, next.parentId).then(
        (gone) => this.#log.info({ streamId: info.id, parentId: next.parentId, gone }, 'parent went quiet: asked the controller'),
        (err: unknown) => this.#log.debug({ err }, 'cannot report a quiet parent'),
      );
    });
    this.#log.info({ streamId: info.id, parentId: parent.nodeId, moved: !!replaced }, 'carrying stream');
    this.safeEmit('streamstart', info.id, parent.nodeId);
  }

  /** A viewer with a ticket for a stream we were just assigned (the assignment may still be on its way). */
  streamForViewer(streamId: string): LocalStream {
    if (this.#draining) throw new CascadeError('CASCADE_ERR_NODE_DRAINING');
    const existing = this.#node.stream(streamId);
    if (existing) return existing;
    const stream = this.#node.openStream(streamId, { depth: 1, state: 'waiting' });
    this.#watchIdle(stream);
    setTimeout(() => {
      if (!stream.closed && !this.#ingress.has(streamId)) {
        this.#log.warn({ streamId }, 'no assignment arrived for a ticketed viewer');
        stream.close();
      }
    }, PENDING_ASSIGNMENT_MS).unref();
    return stream;
  }

  #forwarder(stream: LocalStream): IntegrityForwarder {
    let f = this.#forwarders.get(stream);
    if (!f) this.#forwarders.set(stream, (f = new IntegrityForwarder(stream, { logger: this.#log })));
    return f;
  }

  #parentLost(streamId: string, ingress: PipeIngress, reason: string): void {
    if (this.#ingress.get(streamId) !== ingress || this.#closed) return;
    this.#ingress.delete(streamId);
    this.#node.stream(streamId)?.markSourcesStale(FRESH_SOURCES_WAIT_MS);
    this.safeEmit('parentlost', streamId, reason);
    // Viewers stay connected (their consumers come back with the new parent's producers).
    this.#lostParents.lost(streamId, ingress.parentId);
  }

  #release(streamId: string, reason: string): void {
    const stream = this.#node.stream(streamId);
    if (!stream) return;
    this.#log.info({ streamId, reason }, 'dropping stream');
    stream.close();
    this.safeEmit('streamstop', streamId);
    this.#control.streamReleased(streamId).catch(() => {});
  }

  /** Drop a stream `lingerMs` after its last viewer and child left (or at once when it ends). */
  #watchIdle(stream: LocalStream): void {
    if (this.#watched.has(stream)) return;
    this.#watched.add(stream);
    stream.on('idle', () => {
      clearTimeout(this.#linger.get(stream.id));
      const t = setTimeout(() => {
        this.#linger.delete(stream.id);
        if (stream.viewerCount === 0 && stream.childCount === 0) this.#release(stream.id, 'no viewers or children left');
      }, this.#options.lingerMs);
      t.unref();
      this.#linger.set(stream.id, t);
    });
    stream.on('statechange', (s) => {
      if (s === 'ended') setTimeout(() => this.#release(stream.id, 'stream ended'), 1000).unref();
    });
  }
}
