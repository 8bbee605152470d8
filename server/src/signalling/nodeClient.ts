import { NodeRequests, Notifications, Peer, channelPair, type MessageChannel } from '@cascade/protocol';
import type { MediaNode, Session } from '@cascade/sfu';

/** The client end of the node signalling (`/ws`), as the SDK and child relays speak it. */
export type NodeClient = Peer<Record<string, never>, typeof NodeRequests, typeof Notifications>;

/** A node-signalling client over any message channel (an in-process one today, a relay tunnel later). */
export function nodeClient(channel: MessageChannel, options: { requestTimeoutMs: number }): NodeClient {
  const client: NodeClient = new Peer({
    channel,
    inbound: {},
    outbound: NodeRequests,
    notifications: Notifications,
    ignoreUnknownNotifications: true,
    requestTimeoutMs: options.requestTimeoutMs,
  });
  return client;
}

/**
 * A client of `node`'s signalling in this process: what an HTTP front end (WHIP) drives on
 * behalf of a client that does not speak it. The node runs the session exactly as for a
 * `/ws` connection (the same services, limits and lifecycle); closing the client ends it.
 */
export function localNodeClient(node: MediaNode, remoteAddress: string, options: { requestTimeoutMs: number }): { client: NodeClient; session: Session } {
  const [ours, theirs] = channelPair();
  const session = node.attachSession(theirs, remoteAddress);
  return { client: nodeClient(ours, options), session };
}
