/**
 * Claims of the JWTs Cascade issues. Operator tokens (broadcast, watch, relay) are signed
 * with the deployment's shared secret (HS256). Placement and pipe tickets are signed by the
 * controller with a private key (ES256) so that untrusted relays can verify them with the
 * public key without being able to mint any.
 */
import { CascadeError } from './errors.js';

/**
 * operator: the operator's own tools (revocation, the credits listing). origin: an origin
 * without a controller of its own, registering with a remote one (minted by the origin itself
 * from the shared secret).
 */
export type TokenScope = 'broadcast' | 'watch' | 'relay' | 'operator' | 'origin';

/**
 * Every kind of token is signed with its own key (derived from the deployment secret) and
 * carries its own audience, so that a token of one kind is never accepted as another.
 */
export const TOKEN_SCOPES: readonly TokenScope[] = ['broadcast', 'watch', 'relay', 'operator', 'origin'];
export const tokenAudience = (scope: TokenScope): string => `cascade:${scope}`;

export interface OperatorTokenClaims {
  scope: TokenScope[];
  /** Who: a user for broadcast/watch, a relay's operator-chosen name for relay, an account's name. */
  sub: string;
  /** Restricts a broadcast or watch token to one stream id. */
  stream?: string;
  /** For relay tokens: the relay is run by a volunteer (untrusted, preferred for leaves). */
  volunteer?: boolean;
  /**
   * Token id, set by the issuer: what `cascade token revoke <id>` and the Volunteer page name.
   * A renewed relay token keeps the id of the token it renews, so one revocation ends them all.
   */
  jti?: string;
  /** Id of the account the token was issued to (Volunteer page, broadcast page); absent on operator-issued tokens. */
  acct?: string;
}

/** What a verified token gives: its claims plus the id and expiry every Cascade token has. */
export interface VerifiedTokenClaims extends OperatorTokenClaims {
  jti: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
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

/**
 * The coded error of a failed JWT check: EXPIRED_TOKEN for jsonwebtoken's TokenExpiredError
 * (its class name is its documented API), INVALID_TOKEN for anything else; the original as cause.
 */
export function tokenError(err: unknown): CascadeError {
  if (err instanceof Error && err.name === 'TokenExpiredError') return new CascadeError('CASCADE_ERR_AUTH_EXPIRED_TOKEN', undefined, { cause: err });
  return new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', undefined, { cause: err });
}
