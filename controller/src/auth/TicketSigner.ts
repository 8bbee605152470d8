import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { TICKET_ALGORITHM, type PipeTicketClaims, type ViewerTicketClaims } from '@cascade/protocol';

/** A fresh P-256 key pair in PEM, for signing tickets. */
export function generateTicketKey(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * Signs short-lived placement (viewer) and pipe tickets with the deployment's EC key. Nodes
 * verify with the public key; no node, trusted or not, can forge one.
 */
export class TicketSigner {
  readonly publicKey: string;
  /** Parsed once: parsing the PEM on every signature would double a placement's cost. */
  readonly #privateKey: KeyObject;
  readonly #ttlSec: number;

  constructor(key: { privateKey: string; publicKey: string }, ttlSec: number) {
    this.#privateKey = createPrivateKey(key.privateKey);
    this.publicKey = key.publicKey;
    this.#ttlSec = ttlSec;
  }

  /**
   * Whether `ticket` is a pipe ticket this key signed for child `child` pulling `stream` from
   * `parent`, issued within `maxAgeSec` (expired ones count: it proves the controller placed
   * that edge, not that a pipe may open now).
   */
  vouchesForEdge(ticket: string, edge: { stream: string; parent: string; child: string }, now: number, maxAgeSec: number): boolean {
    try {
      const c = jwt.verify(ticket, this.publicKey, { algorithms: [TICKET_ALGORITHM], ignoreExpiration: true }) as PipeTicketClaims & { iat?: number };
      return c.kind === 'pipe' && c.stream === edge.stream && c.node === edge.parent && c.child === edge.child && typeof c.iat === 'number' && now / 1000 - c.iat <= maxAgeSec;
    } catch {
      return false;
    }
  }

  /** Every ticket has its own id: the node that accepts it accepts it once. */
  viewer(claims: Omit<ViewerTicketClaims, 'kind'>): string {
    return jwt.sign({ kind: 'viewer', ...claims }, this.#privateKey, { algorithm: TICKET_ALGORITHM, expiresIn: this.#ttlSec, jwtid: randomBytes(12).toString('base64url') });
  }

  pipe(claims: Omit<PipeTicketClaims, 'kind'>): string {
    return jwt.sign({ kind: 'pipe', ...claims }, this.#privateKey, { algorithm: TICKET_ALGORITHM, expiresIn: this.#ttlSec, jwtid: randomBytes(12).toString('base64url') });
  }
}
