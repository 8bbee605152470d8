import type {
  NodeLoad,
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

/** Options both stores take. */
export interface TopologyStoreOptions {
  /**
   * K (topology.maxChildren) for the tree edges a heartbeat restores (see heartbeat());
   * decisions take K from their PlacementPolicy. Default: no bound but the parent's own
   * capacity.
   */
  maxChildren?: number;
}

/**
 * Where the controller's state lives: in process (single machine) or in Redis (several
 * controller instances side by side). Decisions that read and write several keys
 * (placement, re-parenting) are single atomic operations of the store, so two instances
 * never place against the same stale view.
 *
 * Every method may reject with CASCADE_ERR_STORE_UNAVAILABLE.
 */
export interface TopologyStore {
  readonly kind: 'memory' | 'redis';

  // ---- nodes
  /** Create or refresh a node record; it is alive until now + ttlMs. */
  upsertNode(node: NodeRecord, status: NodeStatus, ttlMs: number, now: number): Promise<void>;
  /**
   * Liveness plus the node's own load: viewer counts, for the tree entries the store has.
   * It never changes the tree's structure the store knows, and never puts a node into a
   * tree on anyone's word alone. The one exception restores an edge the store lost (a Redis
   * restart, or a node expired while its pipes kept flowing): both ends must report it, the
   * child that it pulls the stream from the parent and the parent that it feeds the child,
   * and the parent must have a free slot (K, its own capacity), as for a decision. Resolves
   * false when the store does not know the node (it lost its state): upsert it again.
   */
  heartbeat(nodeId: string, snapshot: NodeSnapshot, ttlMs: number, now: number): Promise<boolean>;
  setNodeStatus(nodeId: string, status: NodeStatus): Promise<void>;
  getNode(nodeId: string, now: number): Promise<NodeView | undefined>;
  listNodes(now: number): Promise<NodeView[]>;
  /** Ids of nodes whose liveness ran out. */
  expiredNodes(now: number): Promise<string[]>;
  /**
   * Drop a node from every tree. Returns the children it fed (now orphans, to re-parent)
   * and the streams it carried.
   */
  removeNode(nodeId: string): Promise<{ orphans: { streamId: string; childId: string }[]; streams: string[] }>;

  // ---- streams
  putStream(stream: StreamRecord): Promise<void>;
  getStream(streamId: string): Promise<StreamRecord | undefined>;
  listStreams(): Promise<StreamRecord[]>;
  /** Forget a stream and its tree. */
  deleteStream(streamId: string): Promise<void>;
  getTree(streamId: string): Promise<TreeEntry[]>;
  /** Streams a node carries. */
  nodeStreams(nodeId: string): Promise<string[]>;

  // ---- decisions (atomic)
  /**
   * Pick the node for one more viewer and count it there: the origin up to its budget,
   * then the shallowest relay with room (least loaded), else a new relay attached under the
   * shallowest node with a free child slot. Rejects STREAM_NOT_FOUND, STREAM_ENDED, NODE_CAPACITY.
   */
  placeViewer(streamId: string, policy: PlacementPolicy, exclude: string[]): Promise<PlaceResult>;
  releaseViewer(streamId: string, nodeId: string): Promise<void>;
  /**
   * Give `childId` a new parent in `streamId` (never itself or one of its descendants).
   * Resolves null when no node has a free slot.
   */
  reparent(
    streamId: string,
    childId: string,
    policy: PlacementPolicy,
    exclude: string[],
  ): Promise<{ parentId: string; depth: number } | null>;
  /** Remove a node from a stream's tree if it feeds no child. Resolves whether it was removed. */
  detach(streamId: string, nodeId: string): Promise<boolean>;

  // ---- events
  publish(event: TopologyEvent): Promise<void>;
  /** Returns an unsubscribe function. */
  subscribe(handler: (event: TopologyEvent) => void): () => void;

  // ---- keys
  /** The EC key pair that signs tickets, created once per deployment. */
  getOrCreateTicketKey(generate: () => { privateKey: string; publicKey: string }): Promise<{ privateKey: string; publicKey: string }>;

  close(): Promise<void>;
}

export type { NodeLoad };
