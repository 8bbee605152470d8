import jwt from 'jsonwebtoken';
import {
  CascadeError,
  TOKEN_ALGORITHM,
  type OperatorTokenClaims,
  type TokenScope,
} from '@cascade/protocol';

function tokenError(err: unknown): CascadeError {
  if ((err as Error)?.name === 'TokenExpiredError') return new CascadeError('CASCADE_ERR_AUTH_EXPIRED_TOKEN', undefined, { cause: err });
  return new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', undefined, { cause: err });
}

/**
 * Operator tokens (broadcast, watch, relay), HS256 with the deployment secret. Issued by the
 * `cascade token` CLI, or, in development mode only, handed to the demo page.
 */
export class TokenService {
  readonly #secret: string;

  constructor(secret: string) {
    if (secret.length < 16) throw new TypeError('token secret must have at least 16 characters');
    this.#secret = secret;
  }

  issue(claims: OperatorTokenClaims, ttlSec: number): string {
    return jwt.sign({ ...claims }, this.#secret, { algorithm: TOKEN_ALGORITHM, expiresIn: ttlSec });
  }

  /** Verify a token and that it grants one of `scopes`. Throws AUTH_* coded errors. */
  verifyAny(token: string | undefined, scopes: TokenScope[]): OperatorTokenClaims {
    let last: unknown;
    for (const scope of scopes) {
      try {
        return this.verify(token, scope);
      } catch (err) {
        if (!(err instanceof CascadeError && err.code === 'CASCADE_ERR_AUTH_FORBIDDEN')) throw err;
        last = err;
      }
    }
    throw last;
  }

  /** Verify a token and that it grants `scope`. Throws AUTH_* coded errors. */
  verify(token: string | undefined, scope: TokenScope): OperatorTokenClaims {
    if (!token) throw new CascadeError('CASCADE_ERR_AUTH_MISSING_TOKEN', `${scope} token required`);
    let claims: OperatorTokenClaims;
    try {
      claims = jwt.verify(token, this.#secret, { algorithms: [TOKEN_ALGORITHM] }) as OperatorTokenClaims;
    } catch (err) {
      throw tokenError(err);
    }
    if (!Array.isArray(claims.scope) || !claims.scope.includes(scope)) {
      throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', `token lacks the ${scope} scope`);
    }
    if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 128) {
      throw new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', 'token has no subject');
    }
    return claims;
  }
}
