/** What a viewer asks of a node on `/ws`, and what the node tells it. */
import { Type, type Static } from '@sinclair/typebox';
import { DataChannelInfo, IceServer, IntegrityReport, MediaKind, NodeId, RecentBatches, RtpCapabilities, RtpParameters, StreamId, StreamInfo } from './common.js';
import { Count, Empty, Id, MAX_LAYERS, SpatialLayer, Token, req } from './schema.js';

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

/** Viewer requests (part of NodeRequests). */
export const ViewerRequests = {
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
   * Viewer: its picture has stopped while the packets still come, the decoder waiting for a key
   * frame (its own request, RTCP over the same weak link, may have been lost: a browser asks
   * again only after 3 s). Asked over signalling, which loses nothing. At most one a second per
   * consumer is passed on (`requested: false` for the others).
   */
  'consumer.requestKeyFrame': req(Type.Object({ consumerId: Id }), Type.Object({ requested: Type.Boolean() })),
  /**
   * Viewer: receive the stream's digest channel (signed digests of every frame, from the
   * origin) on its recv transport, as a data consumer. After stream.subscribe.
   */
  'integrity.subscribe': req(
    Type.Object({ transportId: Id }),
    Type.Object({
      dataConsumer: DataChannelInfo,
      /**
       * The batches this node passed on during the last second (base64, signed by the origin as
       * on the channel): the frames that came before the channel opened, a failover's first key
       * frame among them, verify at once instead of waiting for the next key frame.
       */
      recent: Type.Optional(RecentBatches),
    }),
  ),
  /** Viewer, to the origin: a receipt for what it received (see ViewerReceipt). */
  'viewer.receipt': req(ViewerReceipt, Type.Object({ counted: Type.Boolean() })),
  /** Viewer, to the origin: the node serving it sent frames that do not verify, or none it can decode. */
  'viewer.integrity': req(IntegrityReport, Empty),
} as const;

/**
 * A viewer's requests that the public endpoint answers itself, never the node it forwards the
 * viewer to: they are about that node. Their answers say nothing of whether the node is there.
 */
export const ENDPOINT_REQUESTS: ReadonlySet<string> = new Set(['viewer.receipt', 'viewer.integrity'] satisfies (keyof typeof ViewerRequests)[]);

/** Notifications to a viewer (part of Notifications). */
export const ViewerNotifications = {
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
} as const;
