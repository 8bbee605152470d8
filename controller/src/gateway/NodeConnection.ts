import type { ControlNotifications, ControlRequests, Logger, NodeCapacity, Peer, RelayRequests, VerifiedTokenClaims } from '@cascade/protocol';
import type { NodeLink } from '../tunnels/TunnelRouter.js';
import type { NodeRecord, NodeStatus } from '../types.js';

/** The gateway's end of a media node's `/control` connection. */
export type ControlPeer = Peer<typeof ControlRequests, typeof RelayRequests, typeof ControlNotifications>;

/** One media node's `/control` connection as the gateway holds it, from its opening to its close. */
export interface NodeConnection {
  peer: ControlPeer;
  log: Logger;
  /** The address it connects from (behind a trusted proxy: the one the proxy names). */
  observedIp: string;
  record?: NodeRecord;
  /** What it declared at registration (record.capacity may be lower: declared upload, measured upload). */
  declared?: NodeCapacity;
  status: NodeStatus;
  /** The status to take once checked (a relay the controller had demoted or drained keeps that). */
  resumeStatus?: NodeStatus;
  tokenHash?: string;
  nonce?: string;
  stopProbe?: () => void;
  link?: NodeLink;
  registerTimer?: ReturnType<typeof setTimeout>;
  /** The token it registered with, and the end of RelayTokens' watch on it (renewal, revocation). */
  claims?: VerifiedTokenClaims;
  untrackToken?: () => void;
  /** An origin's probe answers (integrity), withdrawn when the connection closes. */
  withdrawProber?: () => void;
  /** Caught altering or withholding media: stays demoted while its revoked token drains it. */
  condemned?: boolean;
}
