import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import {
  CascadeError,
  TOKEN_ALGORITHM,
  TOKEN_SCOPES,
  tokenAudience,
  tokenError,
  type OperatorTokenClaims,
  type TokenScope,
  type VerifiedTokenClaims,
} from '@cascade/protocol';
import { deriveKey } from './keys.js';

/** What TokenService asks of the revocation list: a synchronous answer, kept current from the store. */
export interface RevocationCheck {
  has(tokenId: string): boolean;
}

export interface TokenServiceOptions {
  /** `iss` of the tokens signed and accepted. Default 'cascade'. */
  issuer?: string;
  /** Revoked token ids; without one nothing is ever revoked (the CLI, unit tests). */
  revocations?: RevocationCheck;
}

/** A token just signed, with what its holder needs to manage it. */
export interface IssuedToken {
  token: string;
  /** Its id (jti): what `cascade token revoke <id>` takes. */
  id: string;
  /** ms since the epoch. */
  expiresAt: number;
}

/**
 * Operator tokens (broadcast, watch, relay, operator), HS256. Each kind has its own key derived
 * from the deployment secret and its own audience, every token an id (jti) and the deployment's
 * issuer; a revoked id is refused at once. Issued by the `cascade token` CLI, for signed-in
 * accounts (Volunteer page, broadcast page), or in development mode to the demo page.
 */
export class TokenService {
  readonly issuer: string;
  readonly #keys: Map<TokenScope, KeyObject>;
  readonly #revocations: RevocationCheck | undefined;

  constructor(secret: string, options: TokenServiceOptions = {}) {
    if (secret.length < 16) throw new TypeError('token secret must have at least 16 characters');
    this.issuer = options.issuer ?? 'cascade';
    this.#revocations = options.revocations;
    this.#keys = new Map(TOKEN_SCOPES.map((s) => [s, createSecretKey(deriveKey(secret, `token:${s}`))]));
  }

  /** Sign a token of one kind (`claims.scope` names exactly one); a fresh id unless `claims.jti` is given. */
  mint(claims: OperatorTokenClaims, ttlSec: number): IssuedToken {
    if (claims.scope.length !== 1) throw new TypeError('a token grants exactly one scope');
    const scope = claims.scope[0]!;
    // Hex, not base64url: an id starting with '-' (1 in 64) read as an option by `cascade token revoke <id>`.
    const id = claims.jti ?? randomBytes(12).toString('hex');
    const now = Math.floor(Date.now() / 1000);
    const exp = now + Math.floor(ttlSec);
    const token = jwt.sign({ ...claims, jti: id, iat: now, exp }, this.#key(scope), {
      algorithm: TOKEN_ALGORITHM,
      audience: tokenAudience(scope),
      issuer: this.issuer,
    });
    return { token, id, expiresAt: exp * 1000 };
  }

  issue(claims: OperatorTokenClaims, ttlSec: number): string {
    return this.mint(claims, ttlSec).token;
  }

  /** Verify a token and that it grants one of `scopes`. Throws AUTH_* coded errors. */
  verifyAny(token: string | undefined, scopes: TokenScope[]): VerifiedTokenClaims {
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

  /**
   * Verify a token and that it grants `scope`: its kind's key, audience and issuer, an id, a
   * subject, not expired, not revoked. Throws AUTH_* coded errors.
   */
  verify(token: string | undefined, scope: TokenScope): VerifiedTokenClaims {
    if (!token) throw new CascadeError('CASCADE_ERR_AUTH_MISSING_TOKEN', `${scope} token required`);
    // An expired token is refused as expired whoever signed it (one from before token kinds had
    // keys of their own included): its holder learns to get a new one. The unchecked expiry is
    // only ever used to refuse.
    const exp = (jwt.decode(token, { json: true }) as { exp?: unknown } | null)?.exp;
    if (typeof exp === 'number' && exp * 1000 <= Date.now()) throw new CascadeError('CASCADE_ERR_AUTH_EXPIRED_TOKEN');
    let claims: VerifiedTokenClaims;
    try {
      claims = jwt.verify(token, this.#key(scope), {
        algorithms: [TOKEN_ALGORITHM],
        audience: tokenAudience(scope),
        issuer: this.issuer,
      }) as VerifiedTokenClaims;
    } catch (err) {
      // A good token of another kind (a broadcast token offered to register a relay) is a
      // wrong scope, not a forgery: say so.
      const kind = (err as Error)?.name === 'JsonWebTokenError' ? this.#kindOf(token, scope) : undefined;
      if (kind) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', `a ${kind} token does not grant ${scope}`);
      throw tokenError(err);
    }
    if (!Array.isArray(claims.scope) || !claims.scope.includes(scope)) {
      throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', `token lacks the ${scope} scope`);
    }
    if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 128) {
      throw new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', 'token has no subject');
    }
    if (typeof claims.jti !== 'string' || claims.jti.length === 0 || claims.jti.length > 64) {
      throw new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', 'token has no id');
    }
    if (this.#revocations?.has(claims.jti)) throw new CascadeError('CASCADE_ERR_AUTH_REVOKED_TOKEN', claims.jti);
    return claims;
  }

  /**
   * A fresh token for a verified one: same id, kind and subject, a new expiry (`ttlSec` from
   * now). A revoked id is refused, so revoking a token also ends every renewal of it.
   */
  renew(claims: VerifiedTokenClaims, ttlSec: number): IssuedToken {
    if (this.#revocations?.has(claims.jti)) throw new CascadeError('CASCADE_ERR_AUTH_REVOKED_TOKEN', claims.jti);
    return this.mint(
      {
        scope: claims.scope,
        sub: claims.sub,
        jti: claims.jti,
        ...(claims.stream !== undefined ? { stream: claims.stream } : {}),
        ...(claims.volunteer !== undefined ? { volunteer: claims.volunteer } : {}),
        ...(claims.acct !== undefined ? { acct: claims.acct } : {}),
      },
      ttlSec,
    );
  }

  /** The kind of token this is, other than `not`, if it verifies as one. */
  #kindOf(token: string, not: TokenScope): TokenScope | undefined {
    return TOKEN_SCOPES.find((kind) => {
      if (kind === not) return false;
      try {
        jwt.verify(token, this.#key(kind), { algorithms: [TOKEN_ALGORITHM], audience: tokenAudience(kind), issuer: this.issuer });
        return true;
      } catch {
        return false;
      }
    });
  }

  #key(scope: TokenScope): KeyObject {
    const key = this.#keys.get(scope);
    if (!key) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', `unknown token kind ${String(scope)}`);
    return key;
  }
}
