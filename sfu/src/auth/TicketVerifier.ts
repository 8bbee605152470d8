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

  constructor(publicKey?: string) {
    this.#publicKey = publicKey;
  }

  get ready(): boolean {
    return this.#publicKey !== undefined;
  }

  setPublicKey(pem: string): void {
    this.#publicKey = pem;
  }

  verifyViewer(ticket: string, nodeId: string, streamId: string): ViewerTicketClaims {
    const c = this.#verify(ticket);
    if (c.kind !== 'viewer') throw new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN', 'not a viewer ticket');
    if (c.node !== nodeId) throw new CascadeError('CASCADE_ERR_NODE_WRONG_NODE', `ticket is for ${c.node}`);
    if (c.stream !== streamId) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'ticket is for another stream');
    return c;
  }

  verifyPipe(ticket: string, nodeId: string, streamId: string): PipeTicketClaims {
    const c = this.#verify(ticket);
    if (c.kind !== 'pipe') throw new CascadeError('CASCADE_ERR_RELAY_NOT_ASSIGNED', 'not a pipe ticket');
    if (c.node !== nodeId) throw new CascadeError('CASCADE_ERR_NODE_WRONG_NODE', `ticket is for ${c.node}`);
    if (c.stream !== streamId) throw new CascadeError('CASCADE_ERR_RELAY_NOT_ASSIGNED', 'ticket is for another stream');
    return c;
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
