/** Events of `Watch` and `Broadcast`. */
export enum CascadeEvent {
  /** The connection state changed (see ConnectionState). Argument: the new state. */
  StateChanged = 'statechange',
  /** The stream is live: media is (again) flowing from the broadcaster. */
  Live = 'live',
  /** The stream exists but its broadcaster is not sending yet, or dropped and may come back. Argument: 'waiting' | 'reconnecting'. */
  Waiting = 'waiting',
  /** The stream is over for good. No further events follow except `stopped`. */
  Ended = 'ended',
  /** The connection to the node was lost; the SDK is finding another one. */
  Reconnecting = 'reconnecting',
  /** Media is flowing again after `reconnecting`. Argument: ms spent reconnecting. */
  Reconnected = 'reconnected',
  /** The node serving this client changed (failover, drain, first join). Argument: node id. */
  NodeChanged = 'nodechange',
  /**
   * Whether the frames shown verify against the origin's signed digests changed, or the node
   * serving them changed. Argument: an IntegrityStatus with the node's id (`state`: verifying,
   * verified, unverified, tampered, unsupported, off). On unverified or tampered the SDK reports
   * the node to the origin and moves to another node (make-before-break) by itself.
   */
  Integrity = 'integrity',
  /** A track was added to (or replaced in) the MediaStream. Argument: the track. */
  Track = 'track',
  /**
   * Watch only: the quality asked for or the layer received changed (a step up once the link
   * allows, a step down when it weakens, setQuality()). Argument: QualityInfo.
   */
  Quality = 'quality',
  /** Broadcast only: the audience size, all nodes together. Argument: count. */
  Viewers = 'viewers',
  /** A fatal error; the object stops. Argument: a typed CascadeError. */
  Error = 'error',
  /** stop() was called or a fatal error happened; nothing more will be emitted. */
  Stopped = 'stopped',
}

export enum ConnectionState {
  Connecting = 'connecting',
  Connected = 'connected',
  Reconnecting = 'reconnecting',
  Disconnected = 'disconnected',
}
