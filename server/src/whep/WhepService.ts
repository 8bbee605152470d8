import { CascadeError, type Logger } from '@cascade/protocol';
import { channelPair } from '@cascade/protocol';
import type { MediaNode } from '@cascade/sfu';
import { parseOffer } from '../sdp/offer.js';
import { WhepSession, type NodeOpener, type WhepSessionOptions } from './WhepSession.js';

/**
 * The node opener of a process that runs `node` (the deployment's public endpoint): a session
 * with it in process. When the controller places the player on a relay, that session carries
 * the signalling there through the controller, as for any viewer at this endpoint.
 */
export function directOpener(node: MediaNode): NodeOpener {
  return async (remoteAddress) => {
    const [ours, theirs] = channelPair();
    return { channel: ours, session: node.attachSession(theirs, remoteAddress) };
  };
}

/** WHEP playback: POST creates a WhepSession for a stream; DELETE and PATCH act on one. */
export class WhepService {
  readonly #opener: NodeOpener;
  readonly #options: WhepSessionOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, WhepSession>();
  #closed = false;

  constructor(opener: NodeOpener, options: WhepSessionOptions, deps: { logger: Logger }) {
    this.#opener = opener;
    this.#options = options;
    this.#log = deps.logger;
  }

  get size(): number {
    return this.#sessions.size;
  }

  async play(request: { streamId: string; sdp: string; token?: string; remoteAddress: string }): Promise<WhepSession> {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_NODE_SHUTTING_DOWN');
    const offer = parseOffer(request.sdp);
    const session = await WhepSession.create(this.#opener, { ...request, offer }, this.#options, { logger: this.#log });
    this.#sessions.set(session.id, session);
    session.once('close', () => this.#sessions.delete(session.id));
    return session;
  }

  /** The resource URL (unguessable) is the capability: whoever has it may end or patch the session. */
  session(streamId: string, id: string): WhepSession {
    const s = this.#sessions.get(id);
    if (!s || s.streamId !== streamId) throw new CascadeError('CASCADE_ERR_HTTP_SESSION_NOT_FOUND', `WHEP ${id}`);
    return s;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#sessions.values()]) s.close('origin shutting down');
  }
}
