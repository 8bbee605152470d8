/**
 * The public `/ws` endpoint: every request a media node answers and every notification it
 * sends, whoever the client is (broadcaster, viewer, child relay). Each role's messages live in
 * its own file; these are the sets the Peer on each end validates against.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DtlsParameters, RecentBatches, RtpCapabilities, StreamId, StreamState, TransportInfo, type ParamsOf, type ResultOf } from './common.js';
import { BroadcasterNotifications, BroadcasterRequests } from './broadcaster.js';
import { PipeNotifications, PipeRequests } from './pipe.js';
import { ViewerNotifications, ViewerRequests } from './viewer.js';
import { Empty, Id, Loose, req } from './schema.js';

/** What any client may ask: liveness and its WebRTC transports. */
const SessionRequests = {
  /** Any client: are you there? Clients ping to notice a node that froze or dropped off the network. */
  'session.ping': req(Empty, Empty),
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
  /**
   * Viewers and child relays: the digest batches this node passed on during the last second.
   * Asked once the digest channel delivers its first batch: the batches sent while it was being
   * set up never came on it, and the frames they vouch for (a new node's first key frame) would
   * otherwise wait for the next key frame.
   */
  'integrity.recent': req(Empty, Type.Object({ recent: RecentBatches })),
} as const;

/** What any client may be told. */
const SessionNotifications = {
  /** Stream state seen by a viewer or a broadcaster. */
  'stream.state': Type.Object({ streamId: StreamId, state: StreamState }),
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
} as const;

/** Requests a media node (`/ws`) answers. */
export const NodeRequests = { ...SessionRequests, ...BroadcasterRequests, ...ViewerRequests, ...PipeRequests } as const;

/** Notifications a media node sends on `/ws`. */
export const Notifications = { ...SessionNotifications, ...BroadcasterNotifications, ...ViewerNotifications, ...PipeNotifications } as const;

export type NodeRequestType = keyof typeof NodeRequests;
export type NotificationType = keyof typeof Notifications;
export type NodeParams<T extends NodeRequestType> = ParamsOf<typeof NodeRequests, T>;
export type NodeResult<T extends NodeRequestType> = ResultOf<typeof NodeRequests, T>;
export type NotificationData<T extends NotificationType> = Static<(typeof Notifications)[T]>;
