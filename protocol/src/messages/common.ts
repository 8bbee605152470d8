/**
 * Shapes more than one endpoint uses: ids, mediasoup's parameters (checked for shape only:
 * mediasoup validates their content), streams, transports, data channels, integrity reports.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Count, Id, Loose, type Defs } from './schema.js';

export { MAX_LAYERS } from './schema.js';

export const StreamId = Type.String({ pattern: '^[A-Za-z0-9_-]{3,64}$' });
export const NodeId = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' });

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

export type ParamsOf<D extends Defs, T extends keyof D> = Static<D[T]['params']>;
export type ResultOf<D extends Defs, T extends keyof D> = Static<D[T]['result']>;

/** Digest batches a node passed on lately (see integrity.recent): a second's worth, and a bound on each. */
export const MAX_RECENT_BATCHES = 20;
export const MAX_RECENT_BATCH_CHARS = 16 * 1024;
/** Signed digest batches as sent on the digest channel, base64, oldest first. */
export const RecentBatches = Type.Array(Type.String({ maxLength: MAX_RECENT_BATCH_CHARS }), { maxItems: MAX_RECENT_BATCHES });
