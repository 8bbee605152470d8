import type { NodeCapacity, NodeSnapshot, NodeStats, StreamInfo, StreamRecord } from '@cascade/protocol';

export type { NodeSnapshot, StreamRecord };

export type NodeKind = 'origin' | 'relay';

/**
 * probing: registered, reachability not yet confirmed (gets no traffic);
 * ready: may get viewers and children;
 * draining: leaving (no new traffic; its children are being moved);
 * demoted: alive but overloaded or lossy (no new traffic; its children are moved).
 */
export type NodeStatus = 'probing' | 'ready' | 'draining' | 'demoted';

export interface NodeRecord {
  id: string;
  kind: NodeKind;
  /** Run by a volunteer: untrusted, preferred as a leaf. */
  volunteer: boolean;
  /** Who registered it (token subject); another subject cannot take the id over. */
  owner: string;
  /** Public base URL of an origin with its own web endpoint (informational; '' for relays, which have none). */
  url: string;
  /** Address viewers and pipes reach its media on (checked by the controller). */
  mediaIp: string;
  /** Its WebRTC server's UDP/TCP port (the one port viewers reach). */
  mediaPort?: number;
  /** Hash of the token it registered with: one live node per token. */
  token?: string;
  capacity: NodeCapacity;
  registeredAt: number;
}

/** A node's place in one stream's tree. */
export interface TreeEntry {
  nodeId: string;
  parent: string | null;
  depth: number;
  viewers: number;
  children: number;
  /** When it joined the tree (ms); heartbeats only prune entries older than a grace period. */
  since: number;
  /** As last reported by the node. */
  bitrateOutKbps?: number;
  /** Since when the node has reported fewer viewers than counted here (ms; see reconcileCount). */
  overSince?: number;
}

export interface NodeLoad {
  viewers: number;
  children: number;
}

export interface PlacementPolicy {
  /** K: children per node per stream. */
  maxChildren: number;
  /** Now, in ms (injected clock). */
  now: number;
}

export interface PlaceResult {
  nodeId: string;
  /** The stream as stored (so a placement needs no other read). */
  stream: StreamRecord;
  /** Set when a relay was added to the tree to make room. */
  attached?: { nodeId: string; parentId: string; depth: number; childIp: string };
}

export interface NodeView extends NodeRecord {
  status: NodeStatus;
  alive: boolean;
  expiresAt: number;
  load: NodeLoad;
  stats?: NodeStats;
}

/** Published on the store's channel so that every controller instance sees decisions. */
export type TopologyEvent =
  | { type: 'assign'; nodeId: string; stream: StreamInfo; parent: { nodeId: string }; ticket: string }
  | { type: 'nodegone'; nodeId: string }
  /** A relay the stream's origin caught altering or withholding media: out for good (token revoked, viewers moved). */
  | { type: 'condemn'; nodeId: string; streamId: string; code: string };
