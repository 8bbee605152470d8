import { CascadeError, TypedEmitter, type NodeStats } from '@cascade/protocol';
import type {
  NodeRecord,
  NodeSnapshot,
  NodeStatus,
  NodeView,
  PlacementPolicy,
  PlaceResult,
  StreamRecord,
  TopologyEvent,
  TreeEntry,
} from '../types.js';
import { belowLimit, FULL, HEARTBEAT_PRUNE_GRACE_MS, NO_LIMIT, parentScore, reconcileCount, relayScore, serveScore } from './scores.js';
import { SortedSet } from './SortedSet.js';
import type { TopologyStore, TopologyStoreOptions } from './TopologyStore.js';

/** What a node's last heartbeat said about one stream that the tree does not show (yet). */
interface EdgeClaim {
  /** The parent it pulls the stream from, while it is not in the tree. */
  parent: string | null;
  /** Registered relays it feeds that are not in the tree. */
  children: string[];
}

/**
 * The single-machine store: the same indexes as the Redis store (sorted sets per stream for
 * serving and parent candidates, one for relays to add), held in process. Operations are
 * synchronous inside, hence atomic.
 *
 * (Over 450 lines: it mirrors the Lua script of redisScript.ts step for step, and keeping each
 * decision with the index upkeep it shares in one file is what lets a reader hold the two side
 * by side; the shared formulas and constants are in scores.ts.)
 */
export class MemoryTopologyStore implements TopologyStore {
  readonly kind = 'memory' as const;
  readonly #nodes = new Map<string, NodeRecord>();
  readonly #expiry = new Map<string, number>();
  readonly #status = new Map<string, NodeStatus>();
  readonly #viewers = new Map<string, number>();
  /** Since when a node's reports have been below its stored viewer count (see reconcileCount). */
  readonly #viewersOverSince = new Map<string, number>();
  readonly #stats = new Map<string, NodeStats>();
  readonly #nodeStreams = new Map<string, Set<string>>();
  readonly #streams = new Map<string, StreamRecord>();
  readonly #trees = new Map<string, Map<string, TreeEntry>>();
  readonly #serve = new Map<string, SortedSet>();
  readonly #parents = new Map<string, SortedSet>();
  readonly #relays = new SortedSet();
  /** Per node and stream, the edges its last heartbeat reported that the tree lacks. */
  readonly #claims = new Map<string, Map<string, EdgeClaim>>();
  readonly #events = new TypedEmitter<{ event: [TopologyEvent]; listenererror: [string, unknown] }>();
  readonly #maxChildren: number;
  #ticketKey: { privateKey: string; publicKey: string } | undefined;
  #closed = false;

  constructor(options: TopologyStoreOptions = {}) {
    this.#maxChildren = options.maxChildren ?? NO_LIMIT;
  }

  // ------------------------------------------------------------------ nodes

  async upsertNode(node: NodeRecord, status: NodeStatus, ttlMs: number, now: number): Promise<void> {
    this.#open();
    this.#nodes.set(node.id, { ...node });
    this.#status.set(node.id, status);
    this.#expiry.set(node.id, now + ttlMs);
    if (!this.#viewers.has(node.id)) this.#viewers.set(node.id, 0);
    this.#refresh(node.id);
  }

  async heartbeat(nodeId: string, snapshot: NodeSnapshot, ttlMs: number, now: number): Promise<boolean> {
    this.#open();
    if (!this.#nodes.has(nodeId)) return false;
    this.#expiry.set(nodeId, now + ttlMs);
    // Viewers are the node's to count; the tree's structure is the controller's. No relay's
    // word alone puts a node into a tree: a relay claiming a stream would draw viewers it
    // cannot serve, and a parent listing idle relays as its children would have viewers sent
    // to relays that never get the stream. Entries the store lost (a Redis restart) come back
    // when both ends of the edge report it, top-down from the origin, within K and capacity.
    const r = reconcileCount(this.#viewers.get(nodeId) ?? 0, snapshot.stats.viewers, this.#viewersOverSince.get(nodeId) ?? 0, now);
    this.#viewers.set(nodeId, r.value);
    this.#viewersOverSince.set(nodeId, r.overSince);
    this.#stats.set(nodeId, snapshot.stats);
    const reported = new Set<string>();
    const claims = new Map<string, EdgeClaim>();
    for (const cs of snapshot.streams) {
      if (!this.#streams.has(cs.streamId)) continue;
      reported.add(cs.streamId);
      const tree = this.#tree(cs.streamId);
      const claim: EdgeClaim = { parent: null, children: [] };
      // Whichever end of a lost edge reports second restores it.
      const parentId = cs.parentNodeId;
      if (!tree.has(nodeId) && parentId !== null) {
        const vouched = this.#claims.get(parentId)?.get(cs.streamId)?.children.includes(nodeId) ?? false;
        if (!vouched || !this.#restore(cs.streamId, nodeId, parentId, now)) claim.parent = parentId;
      }
      const e = tree.get(nodeId);
      if (e) {
        const er = reconcileCount(e.viewers, cs.viewers, e.overSince ?? 0, now);
        e.viewers = er.value;
        e.overSince = er.overSince;
        e.bitrateOutKbps = cs.bitrateOutKbps;
      }
      for (const childId of cs.childNodeIds ?? []) {
        if (childId === nodeId || tree.has(childId) || !this.#nodes.has(childId) || claim.children.includes(childId)) continue;
        const pulls = this.#claims.get(childId)?.get(cs.streamId)?.parent === nodeId;
        if (!pulls || !this.#restore(cs.streamId, childId, nodeId, now)) claim.children.push(childId);
      }
      if (claim.parent !== null || claim.children.length > 0) claims.set(cs.streamId, claim);
    }
    if (claims.size > 0) this.#claims.set(nodeId, claims);
    else this.#claims.delete(nodeId);
    for (const streamId of [...this.#streamsOf(nodeId)]) {
      if (reported.has(streamId)) continue;
      const e = this.#trees.get(streamId)?.get(nodeId);
      if (e && e.since < now - HEARTBEAT_PRUNE_GRACE_MS && e.children === 0 && e.parent !== null) {
        this.#removeEntry(streamId, nodeId);
      }
    }
    this.#refresh(nodeId);
    return true;
  }

  async setNodeStatus(nodeId: string, status: NodeStatus): Promise<void> {
    this.#open();
    if (!this.#nodes.has(nodeId)) return;
    this.#status.set(nodeId, status);
    this.#refresh(nodeId);
  }

  async getNode(nodeId: string, now: number): Promise<NodeView | undefined> {
    this.#open();
    return this.#view(nodeId, now);
  }

  async listNodes(now: number): Promise<NodeView[]> {
    this.#open();
    return [...this.#nodes.keys()].map((id) => this.#view(id, now)!);
  }

  async expiredNodes(now: number): Promise<string[]> {
    this.#open();
    return [...this.#expiry].filter(([, t]) => t <= now).map(([id]) => id);
  }

  async removeNode(nodeId: string): Promise<{ orphans: { streamId: string; childId: string }[]; streams: string[] }> {
    this.#open();
    const orphans: { streamId: string; childId: string }[] = [];
    const streams = [...this.#streamsOf(nodeId)];
    for (const streamId of streams) {
      for (const e of this.#tree(streamId).values()) {
        if (e.parent === nodeId) orphans.push({ streamId, childId: e.nodeId });
      }
      this.#removeEntry(streamId, nodeId);
    }
    for (const m of [this.#nodes, this.#expiry, this.#status, this.#viewers, this.#viewersOverSince, this.#stats, this.#nodeStreams, this.#claims]) {
      m.delete(nodeId);
    }
    this.#relays.delete(nodeId);
    return { orphans, streams };
  }

  // ------------------------------------------------------------------ streams

  async putStream(stream: StreamRecord): Promise<void> {
    this.#open();
    this.#streams.set(stream.id, { ...stream });
    this.#ensureRoot(stream, stream.updatedAt);
  }

  async getStream(streamId: string): Promise<StreamRecord | undefined> {
    this.#open();
    const s = this.#streams.get(streamId);
    return s && { ...s };
  }

  async listStreams(): Promise<StreamRecord[]> {
    this.#open();
    return [...this.#streams.values()].map((s) => ({ ...s }));
  }

  async deleteStream(streamId: string): Promise<void> {
    this.#open();
    const members = [...this.#tree(streamId).keys()];
    for (const nodeId of members) this.#nodeStreams.get(nodeId)?.delete(streamId);
    this.#trees.delete(streamId);
    this.#serve.delete(streamId);
    this.#parents.delete(streamId);
    this.#streams.delete(streamId);
    // Their child totals dropped: other streams' indexes may still mark them full.
    for (const nodeId of members) this.#refresh(nodeId);
  }

  async getTree(streamId: string): Promise<TreeEntry[]> {
    this.#open();
    return [...(this.#trees.get(streamId)?.values() ?? [])].map((e) => ({ ...e }));
  }

  async nodeStreams(nodeId: string): Promise<string[]> {
    this.#open();
    return [...this.#streamsOf(nodeId)];
  }

  // ------------------------------------------------------------------ decisions

  async placeViewer(streamId: string, policy: PlacementPolicy, exclude: string[]): Promise<PlaceResult> {
    this.#open();
    const stream = this.#streams.get(streamId);
    if (!stream) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', streamId);
    if (stream.state === 'ended') throw new CascadeError('CASCADE_ERR_STREAM_ENDED', streamId);
    const ex = new Set(exclude);
    const tree = this.#tree(streamId);
    const root = stream.originNodeId;
    // Synchronously, within this decision (an await here would let another one interleave).
    this.#ensureRoot(stream, policy.now);

    // 1. The origin, up to its own budget.
    const result = (nodeId: string, attached?: PlaceResult['attached']): PlaceResult => ({
      nodeId,
      stream: { ...stream },
      ...(attached ? { attached } : {}),
    });
    if (this.#usable(root, policy.now, ex) && this.#hasViewerRoom(root)) {
      this.#addViewer(streamId, root);
      return result(root);
    }
    // 2. The shallowest, least loaded relay already carrying the stream.
    for (const [id, score] of this.#serveSet(streamId).ascending()) {
      if (score >= FULL) break;
      if (this.#usable(id, policy.now, ex) && this.#hasViewerRoom(id)) {
        this.#addViewer(streamId, id);
        return result(id);
      }
    }
    // 3. A new relay under the shallowest node with a free child slot. The relay is looked for
    // first: when the tree is saturated every relay is in it and full, which ends that scan at
    // once, whereas the parent scan would walk every node at K children.
    let relayId: string | null = null;
    for (const [id, score] of this.#relays.ascending()) {
      if (score >= FULL) break;
      if (tree.has(id) || !this.#usable(id, policy.now, ex) || !this.#hasViewerRoom(id)) continue;
      relayId = id;
      break;
    }
    const parentId = relayId === null ? null : this.#pickParent(streamId, policy, ex, null);
    if (relayId !== null && parentId !== null) {
      const depth = this.#attach(streamId, relayId, parentId, policy.now);
      this.#addViewer(streamId, relayId);
      const attached = { nodeId: relayId, parentId, depth, childIp: this.#nodes.get(relayId)!.mediaIp };
      return result(relayId, attached);
    }
    throw new CascadeError('CASCADE_ERR_NODE_CAPACITY', streamId);
  }

  async releaseViewer(streamId: string, nodeId: string): Promise<void> {
    this.#open();
    const e = this.#trees.get(streamId)?.get(nodeId);
    // A departure the stream's count no longer holds (counted twice, or after a correction) is not taken from the node's other streams.
    if (e && e.viewers === 0) return;
    if (e) e.viewers -= 1;
    if (this.#viewers.has(nodeId)) this.#viewers.set(nodeId, Math.max(0, this.#viewers.get(nodeId)! - 1));
    this.#refresh(nodeId);
  }

  async reparent(
    streamId: string,
    childId: string,
    policy: PlacementPolicy,
    exclude: string[],
  ): Promise<{ parentId: string; depth: number } | null> {
    this.#open();
    const tree = this.#trees.get(streamId);
    const e = tree?.get(childId);
    if (!tree || !e) return null;
    // The root feeds the tree; it never gets a parent.
    if (childId === this.#streams.get(streamId)?.originNodeId) return null;
    const parentId = this.#pickParent(streamId, policy, new Set(exclude), childId);
    if (parentId === null) return null;
    const old = e.parent;
    if (old !== parentId) {
      if (old !== null) this.#addChildCount(streamId, old, -1);
      this.#addChildCount(streamId, parentId, 1);
    }
    e.parent = parentId;
    e.since = policy.now;
    this.#setDepth(streamId, childId, tree.get(parentId)!.depth + 1);
    return { parentId, depth: e.depth };
  }

  async detach(streamId: string, nodeId: string): Promise<boolean> {
    this.#open();
    const e = this.#trees.get(streamId)?.get(nodeId);
    if (!e) return true;
    if (e.children > 0) return false;
    this.#removeEntry(streamId, nodeId);
    return true;
  }

  // ------------------------------------------------------------------ events, keys

  async publish(event: TopologyEvent): Promise<void> {
    this.#open();
    // Asynchronous like Redis pub/sub, so callers never depend on synchronous delivery.
    queueMicrotask(() => this.#events.safeEmit('event', event));
  }

  subscribe(handler: (event: TopologyEvent) => void): () => void {
    this.#events.on('event', handler);
    return () => this.#events.off('event', handler);
  }

  async getOrCreateTicketKey(generate: () => { privateKey: string; publicKey: string }) {
    this.#open();
    this.#ticketKey ??= generate();
    return this.#ticketKey;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#events.removeAllListeners();
  }

  // ------------------------------------------------------------------ internals

  #open(): void {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', 'store closed');
  }

  #tree(streamId: string): Map<string, TreeEntry> {
    let t = this.#trees.get(streamId);
    if (!t) this.#trees.set(streamId, (t = new Map()));
    return t;
  }

  #serveSet(streamId: string): SortedSet {
    let s = this.#serve.get(streamId);
    if (!s) this.#serve.set(streamId, (s = new SortedSet()));
    return s;
  }

  #parentSet(streamId: string): SortedSet {
    let s = this.#parents.get(streamId);
    if (!s) this.#parents.set(streamId, (s = new SortedSet()));
    return s;
  }

  #streamsOf(nodeId: string): Set<string> {
    let s = this.#nodeStreams.get(nodeId);
    if (!s) this.#nodeStreams.set(nodeId, (s = new Set()));
    return s;
  }

  #usable(nodeId: string, now: number, exclude: Set<string>): boolean {
    return (
      this.#nodes.has(nodeId) &&
      (this.#expiry.get(nodeId) ?? 0) > now &&
      this.#status.get(nodeId) === 'ready' &&
      !exclude.has(nodeId)
    );
  }

  #hasViewerRoom(nodeId: string): boolean {
    return (this.#viewers.get(nodeId) ?? 0) < this.#nodes.get(nodeId)!.capacity.maxViewers;
  }

  #addViewer(streamId: string, nodeId: string): void {
    this.#tree(streamId).get(nodeId)!.viewers++;
    this.#viewers.set(nodeId, (this.#viewers.get(nodeId) ?? 0) + 1);
    this.#refresh(nodeId);
  }

  #addChildCount(streamId: string, nodeId: string, delta: number): void {
    const e = this.#trees.get(streamId)?.get(nodeId);
    if (e) e.children = Math.max(0, e.children + delta);
    this.#refresh(nodeId);
  }

  /** Children a node feeds, all streams together (derived from the trees, never stored). */
  #childTotal(nodeId: string): number {
    let n = 0;
    for (const streamId of this.#nodeStreams.get(nodeId) ?? []) n += this.#trees.get(streamId)?.get(nodeId)?.children ?? 0;
    return n;
  }

  /** Whether `ancestor` is on the parent chain of `nodeId` (walked to the top, however long). */
  #isDescendant(tree: Map<string, TreeEntry>, nodeId: string, ancestor: string): boolean {
    let cur = tree.get(nodeId)?.parent ?? null;
    // A chain longer than the tree can only be an existing cycle: stop there.
    for (let i = 0; cur !== null && i < tree.size; i++) {
      if (cur === ancestor) return true;
      cur = tree.get(cur)?.parent ?? null;
    }
    return false;
  }

  #pickParent(streamId: string, policy: PlacementPolicy, exclude: Set<string>, child: string | null): string | null {
    const tree = this.#tree(streamId);
    for (const [id, score] of this.#parentSet(streamId).ascending()) {
      if (score >= FULL) break;
      const e = tree.get(id);
      if (!e || id === child || e.children >= policy.maxChildren) continue;
      if (!this.#usable(id, policy.now, exclude)) continue;
      if (this.#childTotal(id) >= this.#nodes.get(id)!.capacity.maxChildren) continue;
      if (child !== null && this.#isDescendant(tree, id, child)) continue;
      return id;
    }
    return null;
  }

  #ensureRoot(stream: StreamRecord, since: number): void {
    const tree = this.#tree(stream.id);
    if (tree.has(stream.originNodeId)) return;
    tree.set(stream.originNodeId, { nodeId: stream.originNodeId, parent: null, depth: 0, viewers: 0, children: 0, since });
    this.#streamsOf(stream.originNodeId).add(stream.id);
    this.#refresh(stream.originNodeId);
  }

  /** Give a node a new depth and its whole subtree the depths that follow from it. */
  #setDepth(streamId: string, nodeId: string, depth: number): void {
    const tree = this.#tree(streamId);
    const below = new Map<string, TreeEntry[]>();
    for (const x of tree.values()) {
      if (x.parent === null) continue;
      let list = below.get(x.parent);
      if (!list) below.set(x.parent, (list = []));
      list.push(x);
    }
    const queue: [string, number][] = [[nodeId, depth]];
    const seen = new Set<string>();
    for (let i = 0; i < queue.length; i++) {
      const [id, d] = queue[i]!;
      if (seen.has(id)) continue;
      seen.add(id);
      const e = tree.get(id);
      if (!e) continue;
      e.depth = d;
      this.#refresh(id);
      for (const c of below.get(id) ?? []) queue.push([c.nodeId, d + 1]);
    }
  }

  #attach(streamId: string, nodeId: string, parentId: string, now: number): number {
    const tree = this.#tree(streamId);
    const depth = tree.get(parentId)!.depth + 1;
    tree.set(nodeId, { nodeId, parent: parentId, depth, viewers: 0, children: 0, since: now });
    this.#streamsOf(nodeId).add(streamId);
    this.#addChildCount(streamId, parentId, 1);
    this.#refresh(nodeId);
    return depth;
  }

  /**
   * Put back an edge both of its ends reported (the store lost it), if a decision could have
   * made it: a registered relay not in the tree, under a node in the tree with a free slot
   * (K and its own capacity) that does not hang below the relay. Relays still hanging under
   * the relay (orphans not moved yet) are its children again. Resolves whether it did.
   */
  #restore(streamId: string, childId: string, parentId: string, now: number): boolean {
    const tree = this.#trees.get(streamId);
    const child = this.#nodes.get(childId);
    const parent = this.#nodes.get(parentId);
    const p = tree?.get(parentId);
    if (!tree || !p || !parent || child?.kind !== 'relay' || childId === parentId || tree.has(childId)) return false;
    if (!belowLimit(p.children, this.#maxChildren) || this.#childTotal(parentId) >= parent.capacity.maxChildren) return false;
    if (this.#isDescendant(tree, parentId, childId)) return false;
    const depth = this.#attach(streamId, childId, parentId, now);
    let below = 0;
    for (const x of tree.values()) if (x.parent === childId) below++;
    if (below > 0) {
      tree.get(childId)!.children = below;
      this.#setDepth(streamId, childId, depth);
    }
    return true;
  }

  #removeEntry(streamId: string, nodeId: string): void {
    const tree = this.#trees.get(streamId);
    const e = tree?.get(nodeId);
    if (!tree || !e) return;
    tree.delete(nodeId);
    if (e.parent !== null) this.#addChildCount(streamId, e.parent, -1);
    this.#nodeStreams.get(nodeId)?.delete(streamId);
    this.#serve.get(streamId)?.delete(nodeId);
    this.#parents.get(streamId)?.delete(nodeId);
  }

  /** Recompute a node's scores in every index it belongs to. */
  #refresh(nodeId: string): void {
    const node = this.#nodes.get(nodeId);
    if (!node) return;
    const viewers = this.#viewers.get(nodeId) ?? 0;
    const children = this.#childTotal(nodeId);
    const cap = node.capacity;
    for (const streamId of this.#streamsOf(nodeId)) {
      const e = this.#trees.get(streamId)?.get(nodeId);
      if (!e) continue;
      if (e.parent !== null) this.#serveSet(streamId).set(nodeId, serveScore(e.depth, viewers, cap.maxViewers));
      this.#parentSet(streamId).set(nodeId, parentScore(e.depth, node.volunteer, e.children, children >= cap.maxChildren));
    }
    if (node.kind === 'relay') this.#relays.set(nodeId, relayScore(node.volunteer, cap.maxChildren, viewers, cap.maxViewers));
  }

  #view(nodeId: string, now: number): NodeView | undefined {
    const n = this.#nodes.get(nodeId);
    if (!n) return undefined;
    const expiresAt = this.#expiry.get(nodeId) ?? 0;
    const stats = this.#stats.get(nodeId);
    return {
      ...n,
      status: this.#status.get(nodeId) ?? 'probing',
      alive: expiresAt > now,
      expiresAt,
      load: { viewers: this.#viewers.get(nodeId) ?? 0, children: this.#childTotal(nodeId) },
      ...(stats ? { stats } : {}),
    };
  }
}
