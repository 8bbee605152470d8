import type { Logger, StreamInfo } from '@cascade/protocol';
import type { TicketSigner } from './auth/TicketSigner.js';
import type { Clock } from './clock.js';
import type { TopologyStore } from './store/TopologyStore.js';
import type { StreamRecord } from './types.js';

export interface ReparenterDeps {
  store: TopologyStore;
  tickets: TicketSigner;
  /** The controller's own logger: these are its decisions, logged under its component. */
  logger: Logger;
  clock: Clock;
  /** A relay got a new parent in the store (before it is told). */
  onReparent(streamId: string, childId: string, parentId: string): void;
}

/**
 * Finding relays a new parent and telling them: the store picks the parent (one atomic
 * operation), then an `assign` is published with a pipe ticket for that parent, so that
 * whichever controller instance holds the relay's connection delivers it. Orphans no node
 * could adopt yet are kept here until the controller's sweep retries them.
 *
 * Why a node loses its children (gone, draining, demoted, condemned) is the controller's
 * business; this only moves them.
 */
export class Reparenter {
  readonly #options: { maxChildren: number };
  readonly #deps: ReparenterDeps;
  /** Orphans no node could adopt yet, by `stream/child`. */
  readonly #pending = new Map<string, { streamId: string; childId: string }>();

  constructor(options: { maxChildren: number }, deps: ReparenterDeps) {
    this.#options = options;
    this.#deps = deps;
  }

  /**
   * Give a relay a new parent, avoiding `exclude`. Never throws: a relay no node can take yet
   * (or a store that fails) is kept for retryPending().
   */
  async adopt(streamId: string, childId: string, exclude: string[]): Promise<void> {
    const { store, logger: log, clock } = this.#deps;
    try {
      const stream = await store.getStream(streamId);
      if (!stream || stream.state === 'ended') return;
      const r = await store.reparent(streamId, childId, { maxChildren: this.#options.maxChildren, now: clock.now() }, exclude);
      if (!r) {
        log.warn({ streamId, childId }, 'no parent with room; will retry');
        this.#pending.set(`${streamId}/${childId}`, { streamId, childId });
        return;
      }
      this.#deps.onReparent(streamId, childId, r.parentId);
      log.info({ streamId, childId, parentId: r.parentId, depth: r.depth }, 'relay re-parented');
      await this.assign(stream, childId, r.parentId);
    } catch (err) {
      log.warn({ err, streamId, childId }, 'cannot re-parent; will retry');
      this.#pending.set(`${streamId}/${childId}`, { streamId, childId });
    }
  }

  /** Every relay `nodeId` feeds, in every stream, gets another parent. */
  async moveChildren(nodeId: string): Promise<void> {
    const store = this.#deps.store;
    for (const streamId of await store.nodeStreams(nodeId)) {
      const tree = await store.getTree(streamId);
      await Promise.all(tree.filter((e) => e.parent === nodeId).map((e) => this.adopt(streamId, e.nodeId, [nodeId])));
    }
  }

  /** A relay reports it lost `parentId`: a new parent, or (already moved) its assignment again. */
  async parentLost(childId: string, streamId: string, parentId: string): Promise<void> {
    const tree = await this.#deps.store.getTree(streamId);
    const entry = tree.find((e) => e.nodeId === childId);
    if (!entry) return;
    if (entry.parent !== parentId && entry.parent !== null) {
      // Already moved (e.g. the controller saw the parent die first): resend the assignment.
      const stream = await this.#deps.store.getStream(streamId);
      if (stream) await this.assign(stream, childId, entry.parent);
      return;
    }
    await this.adopt(streamId, childId, [parentId]);
  }

  /** Retry every orphan once. */
  async retryPending(): Promise<void> {
    for (const [key, o] of [...this.#pending]) {
      this.#pending.delete(key);
      // Retry without the exclusion: a parent that was refused (e.g. its worker had just died)
      // may be the only one with room, and dead nodes are gone from the tree anyway.
      await this.adopt(o.streamId, o.childId, []);
    }
  }

  clear(): void {
    this.#pending.clear();
  }

  /** Tell a relay to pull from `parentId`, if both are still known. */
  async assign(stream: StreamRecord, childId: string, parentId: string): Promise<void> {
    const now = this.#deps.clock.now();
    const [parent, child] = await Promise.all([this.#deps.store.getNode(parentId, now), this.#deps.store.getNode(childId, now)]);
    if (!parent || !child) return;
    await this.publishAssign(stream, childId, parentId, child.mediaIp);
  }

  /** Publish the assignment with a pipe ticket bound to the child's media address. */
  async publishAssign(stream: StreamRecord, childId: string, parentId: string, childIp: string): Promise<void> {
    const ticket = this.#deps.tickets.pipe({ stream: stream.id, node: parentId, child: childId, childIp });
    await this.#deps.store.publish({ type: 'assign', nodeId: childId, stream: streamInfo(stream), parent: { nodeId: parentId }, ticket });
  }
}

/** What nodes and viewers are told about a stream (not its owner, origin or key). */
export function streamInfo(s: StreamRecord): StreamInfo {
  return { id: s.id, title: s.title, state: s.state, createdAt: s.createdAt };
}
