/**
 * How controller instances hand tunnel frames to each other: every instance holds some
 * endpoints (the media nodes connected to it, and its own public endpoint `ctl:<instance>`),
 * and a message for an endpoint goes to the instance that holds it. In process for one
 * machine, Redis pub/sub for several instances (one channel per instance, routes as keys with
 * a TTL refreshed while the node stays connected).
 */

/** One tunnel frame, open or close on its way between endpoints. */
export interface BusMessage {
  op: 'open' | 'data' | 'close' | 'notice';
  /** Tunnel id. */
  id: string;
  /** Endpoint it is for: a node id, or `ctl:<instance>`. */
  to: string;
  /**
   * Endpoint it comes from, as the instance that took it in authenticated it (a node's own
   * connection, or the instance's public endpoint); never what a node claims.
   */
  from: string;
  /** op data: one frame of the `/ws` protocol. */
  data?: string;
  /** op close: WebSocket-style close code and reason. */
  code?: number;
  reason?: string;
  /** op open: the viewer's address, for the hosting node's logs and limits. */
  remoteAddress?: string;
  /** op notice: something the far end should tell its client (e.g. the node went silent). */
  notice?: 'silent' | 'condemned';
  /** How many instances forwarded it already (a stale route is followed once, never in a loop). */
  hops?: number;
}

export const CONTROLLER_ENDPOINT_PREFIX = 'ctl:';

export function controllerEndpoint(instanceId: string): string {
  return `${CONTROLLER_ENDPOINT_PREFIX}${instanceId}`;
}

export interface MessageBus {
  readonly kind: 'memory' | 'redis';
  /** This instance's id (unique per process run). */
  readonly instanceId: string;
  /**
   * Hand a message to the instance holding `msg.to` (this one included). Resolves false when no
   * instance holds it right now (a node not connected anywhere, an instance that is gone).
   * Messages from one caller to one endpoint arrive in the order they were sent.
   */
  send(msg: BusMessage): Promise<boolean>;
  /** Messages for endpoints this instance holds (or held: a stale route is the receiver's to resolve). */
  onMessage(handler: (msg: BusMessage) => void): void;
  /** This instance holds `endpoint` (a node connected here) for ttlMs unless refreshed. */
  hold(endpoint: string, ttlMs: number): Promise<void>;
  /** It no longer does (only if it is still this instance's). */
  release(endpoint: string): Promise<void>;
  /** Whether some instance holds `endpoint` now (ctl: endpoints: whether that instance is up). */
  held(endpoint: string): Promise<boolean>;
  close(): Promise<void>;
}
