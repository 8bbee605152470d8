/**
 * A controller's `/control` endpoint: media nodes (relays, and origins without a controller of
 * their own) registering, heartbeating, asking for placements, and carrying tunnels (node
 * sessions hosted on a media node, their frames wrapped in `tunnel.*` notifications); and what
 * the controller asks of them.
 */
import { Type, type Static } from '@sinclair/typebox';
import { IntegrityReport, NodeId, StreamId, StreamInfo, StreamRecord, type ParamsOf, type ResultOf } from './common.js';
import { Count, Empty, Kbps, Token, req } from './schema.js';

/** The origin's finding after watching a stream through a suspected relay (see `integrity.probe`). */
export const IntegrityVerdict = Type.Object({
  verdict: Type.Union([Type.Literal('tampered'), Type.Literal('clean'), Type.Literal('inconclusive')]),
  code: Type.Optional(Type.String({ maxLength: 64 })),
  detail: Type.String({ maxLength: 300 }),
  /** Complete frames the probe got through the relay, and how many matched no digest of the origin's. */
  frames: Count(1_000_000),
  rejected: Count(1_000_000),
});
export type IntegrityVerdict = Static<typeof IntegrityVerdict>;

export const NodeCapacity = Type.Object({
  /** Viewers this node may serve, all streams together. */
  maxViewers: Count(1_000_000),
  /** Child relays this node may feed, all streams together. */
  maxChildren: Count(10_000),
  upKbps: Kbps,
  downKbps: Kbps,
});
export type NodeCapacity = Static<typeof NodeCapacity>;

/** One stream a node carries, as the node itself sees it (its heartbeat is authoritative). */
export const CarriedStream = Type.Object({
  streamId: StreamId,
  parentNodeId: Type.Union([NodeId, Type.Null()]),
  depth: Count(64),
  viewers: Count(1_000_000),
  children: Count(10_000),
  /**
   * The pipe ticket the node pulls with: the controller restores an edge it lost (a store
   * restart) only on the word of a ticket it signed, never on two nodes' word alone.
   */
  pipeTicket: Type.Optional(Token),
  /** The relays this node's pipes feed for the stream (how a parent vouches for its children). */
  childNodeIds: Type.Optional(Type.Array(NodeId, { maxItems: 1024 })),
  bitrateOutKbps: Kbps,
  /**
   * A child relay vouching for its parent (what the parent's owner is credited from): bytes
   * received from `parentNodeId` for this stream since the current pipe from it opened. It
   * only grows while that pipe lives; a smaller value means a new pipe. Absent on the origin.
   */
  bytesFromParent: Type.Optional(Type.Number({ minimum: 0, maximum: 1e15 })),
});
export type CarriedStream = Static<typeof CarriedStream>;

export const NodeStats = Type.Object({
  viewers: Count(1_000_000),
  children: Count(10_000),
  bitrateInKbps: Kbps,
  bitrateOutKbps: Kbps,
  /** Fraction of packets lost upstream, 0..1. */
  lossRate: Type.Number({ minimum: 0, maximum: 1 }),
  /** CPU used by the node's processes, as a fraction of the machine's cores (0..1). */
  cpu: Type.Number({ minimum: 0, maximum: 1 }),
  /** Bytes relayed to viewers and children since the node started. */
  bytesOut: Type.Number({ minimum: 0 }),
});
export type NodeStats = Static<typeof NodeStats>;

/** How the controller checks that viewers can reach a node's media port (a STUN binding request). */
export const MediaProbe = Type.Object({
  /** ICE username fragment and password of a transport the node keeps for the check. */
  ufrag: Type.String({ minLength: 4, maxLength: 256 }),
  pwd: Type.String({ minLength: 22, maxLength: 256 }),
});
export type MediaProbe = Static<typeof MediaProbe>;

export const NodeAnnouncement = Type.Object({
  /** Requested id; the controller keeps it unless it is taken by another live node. */
  id: Type.Optional(NodeId),
  /** Address announced to viewers and in pipe transports; the controller probes it. */
  mediaIp: Type.String({ minLength: 2, maxLength: 64 }),
  /** UDP (and TCP) port of the node's WebRTC server: the one port viewers reach it on. */
  mediaPort: Type.Integer({ minimum: 1, maximum: 65535 }),
  /** Credentials for the reachability check of mediaIp:mediaPort. */
  probe: MediaProbe,
  /** UDP port on mediaIp answering the pipe-port probe (a nonce echoed over this connection). */
  probePort: Type.Integer({ minimum: 1, maximum: 65535 }),
  capacity: NodeCapacity,
  software: Type.Optional(Type.String({ maxLength: 64 })),
});
export type NodeAnnouncement = Static<typeof NodeAnnouncement>;

export const Placement = Type.Object({
  nodeId: NodeId,
  ticket: Token,
});
export type Placement = Static<typeof Placement>;

/**
 * Most departures one `viewer.left` may carry. Each one is a store write at the controller, so
 * this bounds a message's work; a relay with more to report sends several messages.
 */
export const MAX_VIEWER_DEPARTURES = 100;

/** Tunnel ids: random, unguessable, chosen by whoever opens the tunnel. */
export const TunnelId = Type.String({ pattern: '^[A-Za-z0-9_-]{16,64}$' });
/** A tunnel end: a node id, or `ctl:<instance>` for a controller instance's public endpoint. */
export const EndpointId = Type.String({ pattern: '^(ctl:)?[A-Za-z0-9_.:-]{1,128}$' });

/** A tunnel a node holds, listed when it registers again so that its tunnels outlive the connection. */
export const HeldTunnel = Type.Object({
  id: TunnelId,
  /** The other end. */
  peer: EndpointId,
  /** host: the session lives on this node; client: this node opened it (a pipe to its parent). */
  role: Type.Union([Type.Literal('host'), Type.Literal('client')]),
});
export type HeldTunnel = Static<typeof HeldTunnel>;

/** Start of the UDP datagram the controller sends to a node's pipe-port probe responder, before the nonce. */
export const PROBE_PREFIX = 'CASCADE-PROBE ';

/** Longest frame a tunnel carries (one `/ws` message, JSON-escaped at worst twice as long). */
export const MAX_TUNNEL_FRAME_CHARS = 256 * 1024;

/** Requests a controller (`/control`) answers; the caller is a registered media node. */
export const ControlRequests = {
  'node.register': req(
    Type.Object({
      token: Token,
      node: NodeAnnouncement,
      /** Streams the node already carries (after a controller or Redis restart). */
      streams: Type.Array(CarriedStream, { maxItems: 1000 }),
      /** Tunnels the node still holds from an earlier connection. */
      tunnels: Type.Optional(Type.Array(HeldTunnel, { maxItems: 100_000 })),
    }),
    Type.Object({
      nodeId: NodeId,
      /** PEM public key that verifies placement and pipe tickets. */
      ticketPublicKey: Type.String(),
      heartbeatIntervalMs: Type.Integer(),
      /** How long the controller waits for heartbeats before it declares the node dead. */
      nodeTtlMs: Type.Optional(Type.Integer()),
    }),
  ),
  /** Echo of the nonce the controller sent by UDP to mediaIp:probePort (proves reachability). */
  'node.probeAck': req(Type.Object({ nonce: Type.String({ maxLength: 128 }) }), Empty),
  'node.heartbeat': req(
    Type.Object({ stats: NodeStats, streams: Type.Array(CarriedStream, { maxItems: 1000 }) }),
    Type.Object({
      /**
       * Pipes this node feeds to relays that are no longer its children in the tree (moved
       * elsewhere for a while now): close them. A child cannot keep a copy from every parent
       * it was ever given.
       */
      dropChildren: Type.Optional(Type.Array(Type.Object({ streamId: StreamId, nodeId: NodeId }), { maxItems: 1000 })),
    }),
  ),
  'viewer.place': req(
    Type.Object({
      streamId: StreamId,
      exclude: Type.Optional(Type.Array(NodeId, { maxItems: 16 })),
      /** The viewer's watch token, checked by the controller where watching needs one. */
      token: Type.Optional(Token),
    }),
    Type.Object({
      placement: Placement,
      stream: StreamInfo,
      /** The stream's public key (from its record), for the integrity anchor of the watch answer. */
      integrityKey: Type.Optional(Type.String({ maxLength: 512 })),
    }),
  ),
  /** Origins only: a viewer's integrity report about the node serving it, for the controller to confirm. */
  'viewer.integrity': req(IntegrityReport, Empty),
  /** Viewers that left this stream since the last report (at most the relay's declared maxViewers). */
  'viewer.left': req(Type.Object({ streamId: StreamId, count: Type.Integer({ minimum: 1, maximum: MAX_VIEWER_DEPARTURES }) }), Empty),
  'stream.parentLost': req(Type.Object({ streamId: StreamId, parentNodeId: NodeId }), Empty),
  /**
   * A relay's parent pipe went quiet for a moment (its media stopped) but has not closed: a
   * frozen parent, or a broadcaster pausing. The controller checks the parent: one that does
   * not answer it either is declared gone at once (its children re-parented, its slot freed);
   * one that answers is left alone (`gone: false`).
   */
  'stream.parentSilent': req(Type.Object({ streamId: StreamId, parentNodeId: NodeId }), Type.Object({ gone: Type.Boolean() })),
  'stream.released': req(Type.Object({ streamId: StreamId }), Empty),
  'node.drain': req(Empty, Empty),
  /** An origin's stream record (origins only: a relay is refused). */
  'stream.put': req(Type.Object({ stream: StreamRecord }), Empty),
  /** One stream and its audience (what /api/streams/<id> shows): a broadcaster is told its audience, a relay checks a parent's word. */
  'stream.get': req(
    Type.Object({ streamId: StreamId }),
    Type.Object({ stream: Type.Optional(StreamRecord), viewers: Count(100_000_000) }),
  ),
  /** Every stream the store knows (origins only: an origin adopts what it left behind). */
  'stream.list': req(Empty, Type.Object({ streams: Type.Array(StreamRecord, { maxItems: 100_000 }) })),
  /**
   * A fresh relay token for the one this connection registered with (same id, subject and
   * kind; a later expiry). Relay tokens are short-lived: a relay renews before expiry and
   * registers with the new one after a reconnect. Refused once the token is revoked.
   */
  'node.renewToken': req(Empty, Type.Object({ token: Token, expiresAt: Type.Number() })),
} as const;

/** Notifications a media node sends on `/control`: its side of the tunnels it holds. */
export const ControlNotifications = {
  /** Open a tunnel to a session on node `to` (a child relay's pipe to its parent). */
  'tunnel.open': Type.Object({ id: TunnelId, to: NodeId }),
  'tunnel.data': Type.Object({ id: TunnelId, data: Type.String({ maxLength: MAX_TUNNEL_FRAME_CHARS }) }),
  'tunnel.close': Type.Object({ id: TunnelId, code: Type.Integer({ minimum: 1000, maximum: 4999 }), reason: Type.String({ maxLength: 200 }) }),
} as const;

/** Notifications a controller sends to a media node on `/control`. */
export const RelayNotifications = {
  /** To a relay: its registration was checked and it may now receive traffic. */
  'node.ready': Type.Object({ nodeId: NodeId }),
  /** Host a new session for `from` (a viewer at a public endpoint, a child relay). */
  'tunnel.open': Type.Object({ id: TunnelId, from: EndpointId, remoteAddress: Type.Optional(Type.String({ maxLength: 64 })) }),
  'tunnel.data': Type.Object({ id: TunnelId, data: Type.String({ maxLength: MAX_TUNNEL_FRAME_CHARS }) }),
  'tunnel.close': Type.Object({ id: TunnelId, code: Type.Integer({ minimum: 1000, maximum: 4999 }), reason: Type.String({ maxLength: 200 }) }),
} as const;

/** Requests a controller sends to a relay it holds. */
export const RelayRequests = {
  /** Carry this stream, pulled from this parent (also sent to move a relay to a new parent). */
  'stream.assign': req(
    Type.Object({
      stream: StreamInfo,
      parent: Type.Object({ nodeId: NodeId }),
      ticket: Token,
    }),
    Empty,
  ),
  /**
   * Upload for `durationMs`, at most `kbps`, on a WebSocket to the controller's
   * `/control/upload?nonce=…`: the controller measures what arrives (the relay's real upload,
   * not its declaration).
   */
  'node.uploadTest': req(
    Type.Object({
      nonce: Type.String({ pattern: '^[A-Za-z0-9_-]{16,64}$' }),
      kbps: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
      durationMs: Type.Integer({ minimum: 100, maximum: 10_000 }),
    }),
    Type.Object({ sentBytes: Type.Integer({ minimum: 0 }) }),
  ),
  /**
   * To an origin: watch `streamId` through relay `relayId` (a pipe opened with `ticket`, as a
   * child relay would) and compare what comes with the digests of what was sent.
   */
  'integrity.probe': req(
    Type.Object({ streamId: StreamId, relayId: NodeId, ticket: Token }),
    IntegrityVerdict,
  ),
} as const;

export type ControlRequestType = keyof typeof ControlRequests;
export type RelayRequestType = keyof typeof RelayRequests;
export type RelayNotificationType = keyof typeof RelayNotifications;
export type ControlNotificationType = keyof typeof ControlNotifications;
export type ControlParams<T extends ControlRequestType> = ParamsOf<typeof ControlRequests, T>;
export type ControlResult<T extends ControlRequestType> = ResultOf<typeof ControlRequests, T>;
/** What a node reports in each heartbeat: its own figures and the streams it carries. */
export type NodeSnapshot = ControlParams<'node.heartbeat'>;
/** The controller's answer to a heartbeat: what the node should stop doing. */
export type HeartbeatAnswer = ControlResult<'node.heartbeat'>;
export type RelayParams<T extends RelayRequestType> = ParamsOf<typeof RelayRequests, T>;
export type RelayNotificationData<T extends RelayNotificationType> = Static<(typeof RelayNotifications)[T]>;
export type ControlNotificationData<T extends ControlNotificationType> = Static<(typeof ControlNotifications)[T]>;
