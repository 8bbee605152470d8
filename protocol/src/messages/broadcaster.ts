/** What a broadcaster asks of its origin on `/ws`, and what the origin tells it. */
import { Type } from '@sinclair/typebox';
import { IceServer, MediaKind, RtpCapabilities, RtpParameters, StreamId } from './common.js';
import { Count, Empty, Id, Token, req } from './schema.js';

/** Broadcaster requests (part of NodeRequests). */
export const BroadcasterRequests = {
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
  'producer.create': req(
    Type.Object({ transportId: Id, kind: MediaKind, rtpParameters: RtpParameters }),
    Type.Object({ id: Id }),
  ),
} as const;

/** Notifications to a broadcaster (part of Notifications). */
export const BroadcasterNotifications = {
  /** Audience of the broadcaster's stream, all nodes together. */
  'stream.viewers': Type.Object({ streamId: StreamId, viewers: Count(100_000_000) }),
} as const;
