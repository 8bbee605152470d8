/**
 * Claims of the JWTs Cascade issues. Operator tokens (broadcast, watch, relay) are signed
 * with the deployment's shared secret (HS256). Placement and pipe tickets are signed by the
 * controller with a private key (ES256) so that untrusted relays can verify them with the
 * public key without being able to mint any.
 */
/** `admin`: the operator's own actions over HTTP (deleting anyone's recording). */
export type TokenScope = 'broadcast' | 'watch' | 'relay' | 'admin';

export interface OperatorTokenClaims {
  scope: TokenScope[];
  /** Who: a user for broadcast/watch, a relay's operator-chosen name for relay. */
  sub: string;
  /** Restricts a broadcast or watch token to one stream id. */
  stream?: string;
  /** For relay tokens: the relay is run by a volunteer (untrusted, preferred for leaves). */
  volunteer?: boolean;
}

/** A viewer may use node `node` for stream `stream`. */
export interface ViewerTicketClaims {
  kind: 'viewer';
  stream: string;
  node: string;
}

/**
 * Relay `child` may pull stream `stream` from parent `node`, with media sent to `childIp`:
 * the address the controller probed. A parent sends media nowhere else, so a hostile relay
 * cannot aim a stream at a third party.
 */
export interface PipeTicketClaims {
  kind: 'pipe';
  stream: string;
  node: string;
  child: string;
  childIp: string;
}

export type TicketClaims = ViewerTicketClaims | PipeTicketClaims;

export const TICKET_ALGORITHM = 'ES256';
export const TOKEN_ALGORITHM = 'HS256';
