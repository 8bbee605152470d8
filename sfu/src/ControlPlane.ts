import type { HeartbeatAnswer, IntegrityReport, IntegrityVerdict, MessageChannel, NodeSnapshot, Placement, StreamInfo, StreamRecord } from '@cascade/protocol';

/**
 * A node session hosted on another media node, reached through the controller: the frames of
 * the `/ws` protocol both ways. Closing it ends the session there; the far side closing it (or
 * the controller learning that the node is gone) closes it here, with the code and reason.
 */
export interface Tunnel extends MessageChannel {
  readonly id: string;
  /** The node hosting the session. */
  readonly nodeId: string;
  /**
   * Whether frames can reach the node right now. False while the controller has no connection
   * to it (a control-plane outage): the session is kept, media keeps flowing, frames wait.
   */
  readonly reachable: boolean;
  /** Send, and learn whether the frame could be handed on toward the node (false: it was not, and will not be). */
  sendChecked(data: string): Promise<boolean>;
}

/** Who opened a session hosted here through a tunnel. */
export interface TunnelInfo {
  id: string;
  /** A controller instance's public endpoint (`ctl:<instance>`) for viewers, or a child node. */
  from: string;
  remoteAddress: string;
}

/**
 * The one way a media node (origin or relay) talks to the topology controller: an in-process
 * adapter around an embedded controller, or a remote one over the node's authenticated
 * `/control` connection. Media never waits on it once flowing: only joins and moves do, and a
 * control plane that is away costs no viewer its picture.
 */
export interface ControlPlane {
  /** This node's id, once the controller knows it. */
  readonly nodeId: string | undefined;

  /** Register; resolves with the node id once the controller knows the node (see whenReady). */
  start(): Promise<string>;
  /**
   * Resolves once the controller takes this node's traffic and requests. A remote controller
   * admits a node only after the reachability check that follows its registration (`node.ready`),
   * and refuses its requests until then (CASCADE_ERR_RELAY_NOT_REGISTERED); an embedded one admits
   * it at start(). While admitted it resolves at once; after a lost connection it waits for the
   * next admission. Rejects with the refusal when the node is turned away for good, and with
   * InvalidStateError once closed.
   */
  whenReady(): Promise<void>;
  /** Leave for good: the controller forgets this node; tunnels hosted here close with it. Idempotent. */
  close(): Promise<void> | void;

  /**
   * What this node carries and serves, every heartbeat period (see NodeHeartbeat). `stalled`:
   * this process was late for the beat, so a silent controller is not judged this time. The
   * answer says which child pipes to close (relays moved away from this node).
   */
  heartbeat(snapshot: NodeSnapshot, stalled?: boolean): Promise<HeartbeatAnswer>;
  /** The heartbeat period the controller expects (ms). */
  readonly heartbeatIntervalMs: number;

  /** Where a viewer of `streamId` should go (possibly this node), its place reserved there. Throws coded errors. */
  placeViewer(request: { streamId: string; exclude?: string[]; token?: string }): Promise<{ placement: Placement; stream: StreamInfo; integrityKey?: string }>;
  /** A viewer placed on this node left. */
  viewerLeft(streamId: string): void;
  /** A place reserved on `nodeId` was never taken (the viewer could not reach it). */
  placementUnused(streamId: string, nodeId: string): void;

  /** Open a session on another node (a viewer placed there, a pipe to a parent). */
  openTunnel(nodeId: string, info: { remoteAddress: string }): Tunnel;
  /** Sessions other nodes open on this node arrive here. */
  onTunnel(handler: (channel: MessageChannel, info: TunnelInfo) => void): void;

  // ---- origins
  /** An origin's stream record (create, state changes, end). */
  putStream(record: StreamRecord): Promise<void>;
  /** Every stream the controller knows (an origin adopts the ones it left behind). */
  listStreams(): Promise<StreamRecord[]>;
  /** One stream and its audience over every node, or undefined. */
  getStream(streamId: string): Promise<{ stream: StreamRecord; viewers: number } | undefined>;
  /** A viewer's report that the node serving it alters or withholds media (the controller confirms it before acting). */
  reportIntegrity(report: IntegrityReport): Promise<void>;
  /** How this origin answers the controller's requests to watch a stream through a suspected relay. */
  onProbe(prober: (p: { streamId: string; relayId: string; ticket: string }) => Promise<IntegrityVerdict>): void;

  // ---- relays
  /** This relay lost its parent for a stream: the controller picks another. */
  parentLost(streamId: string, parentNodeId: string): Promise<void>;
  /** This relay's parent pipe went quiet without closing: the controller checks the parent (true: declared gone). */
  parentSilent(streamId: string, parentNodeId: string): Promise<boolean>;
  /** This relay stopped carrying a stream. */
  streamReleased(streamId: string): Promise<void>;
  /** Planned departure: no new traffic, children moved. */
  drain(): Promise<void>;
}
