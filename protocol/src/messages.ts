/**
 * Wire shapes of every signalling message, as TypeBox schemas (so the same definition gives
 * the TypeScript type and the run-time validator used at each edge).
 *
 * Two endpoints speak this protocol:
 * - the public `/ws` (an origin's or a controller's): broadcasters and viewers. A viewer the
 *   controller places on another node keeps talking to this endpoint: its messages are carried
 *   to that node through a tunnel (below) and the answers come back the same way;
 * - a controller's `/control`: media nodes (relays, and origins without a controller of their
 *   own) registering, heartbeating, asking for placements, and carrying tunnels: a tunnel is a
 *   node session (the `/ws` protocol) hosted on a media node, its frames wrapped in `tunnel.*`
 *   notifications. Relays need no port of their own for signalling.
 *
 * mediasoup's own objects (RTP parameters, DTLS parameters, …) are checked here for shape
 * only; mediasoup validates their content and its errors are mapped to coded errors.
 */
import { Type, type Static, type TProperties, type TSchema } from '@sinclair/typebox';

// ---------------------------------------------------------------- shared pieces

export const StreamId = Type.String({ pattern: '^[A-Za-z0-9_-]{3,64}$' });
export const NodeId = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' });
const Token = Type.String({ minLength: 1, maxLength: 4096 });
const Id = Type.String({ minLength: 1, maxLength: 128 });
const Count = (max: number) => Type.Integer({ minimum: 0, maximum: max });
const Kbps = Type.Number({ minimum: 0, maximum: 100_000_000 });

/** A loosely checked object: mediasoup validates the inside. */
const Loose = <T extends TProperties>(props: T) => Type.Object(props, { additionalProperties: true });

export const MediaKind = Type.Union([Type.Literal('audio'), Type.Literal('video')]);
export type MediaKind = Static<typeof MediaKind>;

export const RtpCapabilities = Loose({
  codecs: Type.Optional(Type.Array(Loose({}), { maxItems: 64 })),
  headerExtensions: Type.Optional(Type.Array(Loose({}), { maxItems: 64 })),
});
export const RtpParameters = Loose({
  mid: Type.Optional(Type.String({ maxLength: 64 })),
  codecs: Type.Array(Loose({ mimeType: Type.String({ maxLength: 64 }), payloadType: Type.Integer(), clockRate: Type.Integer() }), {
    minItems: 1,
    maxItems: 16,
  }),
  headerExtensions: Type.Optional(Type.Array(Loose({}), { maxItems: 32 })),
  encodings: Type.Optional(Type.Array(Loose({}), { maxItems: 8 })),
  rtcp: Type.Optional(Loose({})),
});
export const DtlsParameters = Loose({
  role: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('client'), Type.Literal('server')])),
  fingerprints: Type.Array(Loose({ algorithm: Type.String({ maxLength: 32 }), value: Type.String({ maxLength: 256 }) }), {
    minItems: 1,
    maxItems: 8,
  }),
});
export const SrtpParameters = Type.Object({
  cryptoSuite: Type.String({ maxLength: 64 }),
  keyBase64: Type.String({ maxLength: 256 }),
});
export const IceServer = Type.Object({
  urls: Type.Union([Type.String(), Type.Array(Type.String())]),
  username: Type.Optional(Type.String()),
  credential: Type.Optional(Type.String()),
});
export type IceServer = Static<typeof IceServer>;

export const StreamState = Type.Union([
  /** Created, no media yet (the broadcaster is still setting up). */
  Type.Literal('waiting'),
  /** Media flowing from the broadcaster. */
  Type.Literal('live'),
  /** The broadcaster dropped; the stream is kept for a grace period so it can come back. */
  Type.Literal('reconnecting'),
  /** Over for good. */
  Type.Literal('ended'),
]);
export type StreamState = Static<typeof StreamState>;

export const StreamSummary = Type.Object({
  id: StreamId,
  title: Type.String({ maxLength: 200 }),
  state: StreamState,
  createdAt: Type.Number(),
  endedAt: Type.Optional(Type.Number()),
  viewers: Count(100_000_000),
});
export type StreamSummary = Static<typeof StreamSummary>;

/** What a viewer or a relay needs to know of a stream besides its media. */
export const StreamInfo = Type.Object({
  id: StreamId,
  title: Type.String({ maxLength: 200 }),
  state: StreamState,
  createdAt: Type.Number(),
});
export type StreamInfo = Static<typeof StreamInfo>;

/** A stream as the controller stores it: what the origin that carries its broadcaster says of it. */
export const StreamRecord = Type.Object({
  id: StreamId,
  title: Type.String({ maxLength: 200 }),
  state: StreamState,
  createdAt: Type.Number(),
  originNodeId: NodeId,
  /** Subject of the broadcast token that created it; only it may resume the stream. */
  owner: Type.String({ maxLength: 256 }),
  updatedAt: Type.Number(),
  endedAt: Type.Optional(Type.Number()),
  /**
   * The stream's public key (base64 SPKI, ECDSA P-256): what verifies the digest batches its
   * origin signs. Viewers get it from the origin they talk to, never from a relay.
   */
  integrityKey: Type.Optional(Type.String({ maxLength: 512 })),
});
export type StreamRecord = Static<typeof StreamRecord>;

export const TransportInfo = Loose({
  id: Id,
  iceParameters: Loose({}),
  iceCandidates: Type.Array(Loose({}), { maxItems: 64 }),
  dtlsParameters: DtlsParameters,
  /** Viewers' transports: SCTP for the stream's digest channel (see `integrity.subscribe`). */
  sctpParameters: Type.Optional(Loose({})),
});
export type TransportInfo = Static<typeof TransportInfo>;

export const ConsumerInfo = Type.Object({
  id: Id,
  producerId: Id,
  kind: MediaKind,
  rtpParameters: RtpParameters,
});
export type ConsumerInfo = Static<typeof ConsumerInfo>;

/**
 * What a viewer asks to receive: 'auto' follows its link (the highest layer its bandwidth
 * estimate allows), 'high' | 'medium' | 'low' cap the video at that layer (the best layer the
 * stream has when it has fewer), 'audio' receives no video at all.
 */
export const Quality = Type.Union([Type.Literal('auto'), Type.Literal('high'), Type.Literal('medium'), Type.Literal('low'), Type.Literal('audio')]);
export type Quality = Static<typeof Quality>;
/** Spatial layers (simulcast encodings) a stream may have: the index of the highest is at most this minus one. */
export const MAX_LAYERS = 4;
const SpatialLayer = Type.Integer({ minimum: 0, maximum: MAX_LAYERS - 1 });

export const PipeProducerInfo = Type.Object({
  id: Id,
  kind: MediaKind,
  rtpParameters: RtpParameters,
  paused: Type.Boolean(),
});
export type PipeProducerInfo = Static<typeof PipeProducerInfo>;

/** A data channel a node sends on (the stream's digest channel), as mediasoup describes its SCTP stream. */
export const DataChannelInfo = Type.Object({
  /** The data consumer's id (viewers), or the data producer's (pipes). */
  id: Id,
  dataProducerId: Id,
  sctpStreamParameters: Loose({ streamId: Type.Integer({ minimum: 0, maximum: 65535 }) }),
  label: Type.String({ maxLength: 64 }),
  protocol: Type.String({ maxLength: 64 }),
});
export type DataChannelInfo = Static<typeof DataChannelInfo>;

/**
 * What the origin tells a viewer so that it can check every frame it gets from whichever node
 * serves it: the stream's public key, and the origin's clock (how old a digest batch is).
 * Added to the `stream.watch` answer by the origin the viewer talks to, whatever the serving
 * node said.
 */
export const IntegrityAnchor = Type.Object({
  algorithm: Type.Literal('ECDSA-P256-SHA256'),
  /** base64 SPKI of the stream's P-256 key. */
  publicKey: Type.String({ minLength: 16, maxLength: 512 }),
  /** The origin's clock when it answered (ms since the epoch). */
  originTime: Type.Number(),
});
export type IntegrityAnchor = Static<typeof IntegrityAnchor>;

/** What a viewer found wrong with the node serving it (see `viewer.integrity`). */
export const IntegrityReport = Type.Object({
  streamId: StreamId,
  /** The node serving the viewer when it found this. */
  nodeId: NodeId,
  /** tampered: frames that match no signed digest; unverified: no usable signed digests; stalled: the picture stopped. */
  state: Type.Union([Type.Literal('tampered'), Type.Literal('unverified'), Type.Literal('stalled')]),
  code: Type.String({ maxLength: 64 }),
  detail: Type.Optional(Type.String({ maxLength: 200 })),
});
export type IntegrityReport = Static<typeof IntegrityReport>;

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
 * A viewer's receipt: what it received from one node over one interval. Viewers' SDKs send one
 * per interval over their signalling connection to the origin; the controller credits the
 * serving node's owner from them (never from what the node claims alone). `seq` numbers the
 * intervals of one signalling session from 1 upwards; a receipt with a seq already counted is a
 * duplicate. Bytes and packets are those of this interval only (not running totals).
 */
export const ViewerReceipt = Type.Object({
  streamId: StreamId,
  /** The node the media came from (the one the viewer was placed on). */
  nodeId: NodeId,
  seq: Type.Integer({ minimum: 1, maximum: 1e9 }),
  /** Length of the interval, ms (the SDK's receipt period, measured). */
  intervalMs: Type.Integer({ minimum: 1, maximum: 600_000 }),
  /** Bytes of RTP received from nodeId for this stream during the interval, all tracks. */
  bytes: Type.Integer({ minimum: 0, maximum: 1e12 }),
  /** Packets received during the interval. */
  packets: Type.Integer({ minimum: 0, maximum: 1e10 }),
  /** Packets lost during the interval (sequence gaps the receiver counted): how well the node delivers. */
  lost: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e10 })),
});
export type ViewerReceipt = Static<typeof ViewerReceipt>;

// ---------------------------------------------------------------- requests

function req<P extends TSchema, R extends TSchema>(params: P, result: R) {
  return { params, result };
}
const Empty = Type.Object({});

/** Requests a media node (`/ws`) answers. */
export const NodeRequests = {
  /** Any client: are you there? Clients ping to notice a node that froze or dropped off the network. */
  'session.ping': req(Empty, Empty),
  /** Broadcaster: start (or, with `resume`, take back) a stream. */
  'stream.publish': req(
    Type.Object({
      token: Type.Optional(Token),
      streamId: Type.Optional(StreamId),
      title: Type.Optional(Type.String({ maxLength: 200 })),
      resume: Type.Optional(Type.Boolean()),
    }),
    Type.Object({
      streamId: StreamId,
      rtpCapabilities: RtpCapabilities,
      iceServers: Type.Array(IceServer),
      resumed: Type.Boolean(),
    }),
  ),
  /** Broadcaster: end the stream now. */
  'stream.unpublish': req(Empty, Empty),
  /**
   * Viewer: ask for a stream. The answer names the node that serves it (this one, or one the
   * controller chose, reached through this connection).
   */
  'stream.watch': req(
    Type.Object({
      streamId: StreamId,
      /** Placement ticket: the controller reserved this viewer's place (tunnelled sessions). */
      ticket: Type.Optional(Token),
      /** Watch token, where the deployment requires one. */
      token: Type.Optional(Token),
      /** Nodes the client has just lost; the controller avoids them. */
      exclude: Type.Optional(Type.Array(NodeId, { maxItems: 16 })),
    }),
    Type.Object({
      action: Type.Literal('serve'),
      nodeId: NodeId,
      rtpCapabilities: RtpCapabilities,
      iceServers: Type.Array(IceServer),
      stream: StreamInfo,
      /** Send a `viewer.receipt` this often (ms): what the viewer received, from whom. Absent: none. */
      receiptIntervalMs: Type.Optional(Type.Integer({ minimum: 500, maximum: 600_000 })),
      /** The stream's integrity anchor, from the origin the viewer talks to (absent: frames cannot be verified). */
      integrity: Type.Optional(IntegrityAnchor),
    }),
  ),
  'transport.create': req(
    Type.Object({
      direction: Type.Union([Type.Literal('send'), Type.Literal('recv')]),
      /**
       * Viewers only, optional: the payload types the client receives with, as the stream's
       * codecs (from stream.watch) renumbered. A client that made the SDP offer (a WHEP player)
       * cannot take the node's numbers; the transport then gets a router numbering codecs the
       * client's way (without RTX). Omitted: the stream's numbers, as the SDK takes them.
       */
      rtpCapabilities: Type.Optional(RtpCapabilities),
    }),
    TransportInfo,
  ),
  'transport.connect': req(Type.Object({ transportId: Id, dtlsParameters: DtlsParameters }), Empty),
  'transport.restartIce': req(Type.Object({ transportId: Id }), Type.Object({ iceParameters: Loose({}) })),
  'producer.create': req(
    Type.Object({ transportId: Id, kind: MediaKind, rtpParameters: RtpParameters }),
    Type.Object({ id: Id }),
  ),
  /** Viewer: start receiving. Later producers arrive as `consumer.new` notifications. */
  'stream.subscribe': req(
    Type.Object({
      transportId: Id,
      rtpCapabilities: RtpCapabilities,
      /** What to receive at first (see Quality). Default 'auto'; 'audio' creates no video consumer. */
      quality: Type.Optional(Quality),
    }),
    Type.Object({ consumers: Type.Array(ConsumerInfo) }),
  ),
  /**
   * Viewer: receive another quality from now on. Changes apply at most a few times a second (the
   * last one asked wins); leaving 'audio' brings a `consumer.new` for the video, entering it a
   * `consumer.closed`. The answer says what the stream offers right now.
   */
  'quality.set': req(
    Type.Object({ quality: Quality }),
    Type.Object({
      quality: Quality,
      /** Spatial layers the stream's video has (1 without simulcast, 0 without video). */
      layers: Count(MAX_LAYERS),
    }),
  ),
  'consumer.resume': req(Type.Object({ consumerId: Id }), Empty),
  /**
   * Viewer: receive the stream's digest channel (signed digests of every frame, from the
   * origin) on its recv transport, as a data consumer. After stream.subscribe.
   */
  'integrity.subscribe': req(Type.Object({ transportId: Id }), Type.Object({ dataConsumer: DataChannelInfo })),
  /** Child relay: open an SRTP pipe for a stream it was assigned (the ticket proves it). */
  'pipe.open': req(
    Type.Object({
      ticket: Token,
      streamId: StreamId,
      ip: Type.String({ minLength: 2, maxLength: 64 }),
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      srtpParameters: SrtpParameters,
      /**
       * The highest spatial layer anyone below the child wants (its viewers' qualities, its own
       * children's demand). Layers above it are not sent until `pipe.layers` asks for them; the
       * lowest layer always flows. Default: every layer.
       */
      maxSpatialLayer: Type.Optional(SpatialLayer),
    }),
    Type.Object({
      ip: Type.String(),
      port: Type.Integer(),
      srtpParameters: SrtpParameters,
      depth: Count(64),
      state: StreamState,
      producers: Type.Array(PipeProducerInfo),
      /** The stream's digest channel on the pipe's SCTP association (absent from parents that do not send one). */
      integrity: Type.Optional(DataChannelInfo),
    }),
  ),
  /** Child relay, on its pipe session: the highest spatial layer wanted below it changed (see pipe.open). */
  'pipe.layers': req(Type.Object({ maxSpatialLayer: SpatialLayer }), Empty),
  /** Viewer, to the origin: a receipt for what it received (see ViewerReceipt). */
  'viewer.receipt': req(ViewerReceipt, Type.Object({ counted: Type.Boolean() })),
  /** Viewer, to the origin: the node serving it sent frames that do not verify, or none it can decode. */
  'viewer.integrity': req(IntegrityReport, Empty),
} as const;

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

// ---------------------------------------------------------------- notifications

export const Notifications = {
  /** Stream state seen by a viewer or a broadcaster. */
  'stream.state': Type.Object({ streamId: StreamId, state: StreamState }),
  /** Audience of the broadcaster's stream, all nodes together. */
  'stream.viewers': Type.Object({ streamId: StreamId, viewers: Count(100_000_000) }),
  /** A new consumer for a subscribed viewer (a new producer, or one that replaced another). */
  'consumer.new': ConsumerInfo,
  'consumer.closed': Type.Object({ consumerId: Id }),
  /**
   * The layers a viewer's video consumer forwards changed: a step up or down (its bandwidth,
   * its quality), or none (null: nothing forwarded, e.g. the broadcaster's encoder stopped).
   */
  'consumer.layers': Type.Object({
    consumerId: Id,
    spatialLayer: Type.Union([SpatialLayer, Type.Null()]),
    temporalLayer: Type.Union([Type.Integer({ minimum: 0, maximum: 7 }), Type.Null()]),
    /** Spatial layers the stream's video has. */
    layers: Count(MAX_LAYERS),
  }),
  /**
   * A transport's media connection ended from the client's side: its DTLS closed or failed, or
   * ICE lost its path. A client that signals for someone else (WHEP, WHIP) learns its player or
   * encoder is gone; the SDK can ignore it (its own connection state says the same).
   */
  'transport.state': Type.Object({
    transportId: Id,
    state: Type.Union([Type.Literal('closed'), Type.Literal('failed'), Type.Literal('disconnected')]),
  }),
  /** The node will go away: the client should move (make-before-break). */
  'node.draining': Type.Object({ reason: Type.String({ maxLength: 200 }) }),
  /** To a child relay: the parent gained or lost a producer of the piped stream. */
  'pipe.producer.new': PipeProducerInfo,
  'pipe.producer.closed': Type.Object({ producerId: Id }),
  'pipe.depth': Type.Object({ depth: Count(64) }),
} as const;

export type NodeRequestType = keyof typeof NodeRequests;
export type ControlRequestType = keyof typeof ControlRequests;
export type RelayRequestType = keyof typeof RelayRequests;
export type RelayNotificationType = keyof typeof RelayNotifications;
export type ControlNotificationType = keyof typeof ControlNotifications;
export type NotificationType = keyof typeof Notifications;

type Defs = Record<string, { params: TSchema; result: TSchema }>;
export type ParamsOf<D extends Defs, T extends keyof D> = Static<D[T]['params']>;
export type ResultOf<D extends Defs, T extends keyof D> = Static<D[T]['result']>;
export type NodeParams<T extends NodeRequestType> = ParamsOf<typeof NodeRequests, T>;
export type NodeResult<T extends NodeRequestType> = ResultOf<typeof NodeRequests, T>;
export type ControlParams<T extends ControlRequestType> = ParamsOf<typeof ControlRequests, T>;
/** What a node reports in each heartbeat: its own figures and the streams it carries. */
export type NodeSnapshot = ControlParams<'node.heartbeat'>;
/** The controller's answer to a heartbeat: what the node should stop doing. */
export type HeartbeatAnswer = ControlResult<'node.heartbeat'>;
export type ControlResult<T extends ControlRequestType> = ResultOf<typeof ControlRequests, T>;
export type RelayParams<T extends RelayRequestType> = ParamsOf<typeof RelayRequests, T>;
export type NotificationData<T extends NotificationType> = Static<(typeof Notifications)[T]>;
export type RelayNotificationData<T extends RelayNotificationType> = Static<(typeof RelayNotifications)[T]>;
export type ControlNotificationData<T extends ControlNotificationType> = Static<(typeof ControlNotifications)[T]>;
