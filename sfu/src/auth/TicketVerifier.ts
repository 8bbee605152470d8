import jwt from 'jsonwebtoken';
import {
  CascadeError,
  TICKET_ALGORITHM,
  type PipeTicketClaims,
  type TicketClaims,
  type ViewerTicketClaims,
} from '@cascade/protocol';

/** Map jsonwebtoken's failures to our codes. */
export function tokenError(err: unknown): CascadeError {
  const name = (err as Error)?.name;
  if (name === 'TokenExpiredError') return new CascadeError('CASCADE_ERR_AUTH_EXPIRED_TOKEN', undefined, { cause: err });
  return new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', undefined, { cause: err });
}

/**
 * Checks the placement and pipe tickets the controller signs. A node holds only the public
 * key (a relay receives it when it registers), so it can check tickets but never mint one.
 */
export class TicketVerifier {
  #publicKey: string | undefined;
  /**
   * Ids of tickets accepted here, until they expire: a ticket admits one viewer or opens one
   * pipe. (A ticket names one node, so this node alone needs to remember it.)
   */
  readonly #used = new Map<string, number>();

  constructor(publicKey?: string) {
    this.#publicKey = publicKey;
  }

  get ready(): boolean {
    return this.#publicKey !== undefined;
  }

  setPublicKey(pem: string): void {
    this.#publicKey = pem;
  }

  /** Check a placement ticket and use it up. */
  verifyViewer(ticket: string, nodeId: string, streamId: string): ViewerTicketClaims {
    const c = this.#verify(ticket);
    if (c.kind !== 'viewer') throw new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', 'not a viewer ticket');
    if (c.node !== nodeId) throw new CascadeError('CASCADE_ERR_NODE_WRONG_NODE', `ticket is for ${c.node}`);
    if (c.stream !== streamId) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'ticket is for another stream');
    this.#useOnce(c);
    return c;
  }

  /** Check a pipe ticket and use it up. */
  verifyPipe(ticket: string, nodeId: string, streamId: string): PipeTicketClaims {
    const c = this.#verify(ticket);
    if (c.kind !== 'pipe') throw new CascadeError('CASCADE_ERR_RELAY_NOT_ASSIGNED', 'not a pipe ticket');
    if (c.node !== nodeId) throw new CascadeError('CASCADE_ERR_NODE_WRONG_NODE', `ticket is for ${c.node}`);
    if (c.stream !== streamId) throw new CascadeError('CASCADE_ERR_RELAY_NOT_ASSIGNED', 'ticket is for another stream');
    this.#useOnce(c);
    return c;
  }

  #useOnce(c: TicketClaims & { jti?: string; exp?: number }): void {
    const now = Date.now();
    if (this.#used.size > 1000) for (const [id, exp] of this.#used) if (exp < now) this.#used.delete(id);
    if (!c.jti) throw new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', 'ticket has no id');
    if (this.#used.has(c.jti)) throw new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', 'ticket already used');
    this.#used.set(c.jti, (c.exp ?? 0) * 1000 + 1000);
  }

  #verify(ticket: string): TicketClaims {
    if (!this.#publicKey) throw new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', 'node has no ticket key yet');
    try {
      return jwt.verify(ticket, this.#publicKey, { algorithms: [TICKET_ALGORITHM] }) as TicketClaims;
    } catch (err) {
      throw tokenError(err);
    }
  }
}
