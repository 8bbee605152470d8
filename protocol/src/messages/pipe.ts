/** What a child relay asks of its parent on a pipe session (`/ws`), and what the parent tells it. */
import { Type, type Static } from '@sinclair/typebox';
import { DataChannelInfo, MediaKind, RtpParameters, SrtpParameters, StreamId, StreamState } from './common.js';
import { Count, Empty, Id, SpatialLayer, Token, req } from './schema.js';

export const PipeProducerInfo = Type.Object({
  id: Id,
  kind: MediaKind,
  rtpParameters: RtpParameters,
  paused: Type.Boolean(),
});
export type PipeProducerInfo = Static<typeof PipeProducerInfo>;

/** Pipe requests (part of NodeRequests). */
export const PipeRequests = {
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
      /**
       * Send no simulcast video until the child's first `pipe.layers` (at most a second): a relay
       * whose viewers are moving onto this pipe asks for its first key frame once they can all
       * receive it. Default: send at once.
       */
      holdVideo: Type.Optional(Type.Boolean()),
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
} as const;

/** Notifications to a child relay (part of Notifications). */
export const PipeNotifications = {
  /** To a child relay: the parent gained or lost a producer of the piped stream. */
  'pipe.producer.new': PipeProducerInfo,
  'pipe.producer.closed': Type.Object({ producerId: Id }),
  'pipe.depth': Type.Object({ depth: Count(64) }),
} as const;
