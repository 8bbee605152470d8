import { CascadeError, type Logger } from '@cascade/protocol';
import { openWebSocket, createChannelPair } from '@cascade/protocol/node';
import type { MediaNode } from '@cascade/sfu';
import { parseOffer } from '../sdp/offer.js';
import { WhepSession, type NodeOpener, type WhepSessionOptions } from './WhepSession.js';

/**
 * The node opener of a process that runs `node`: its own node in process; another node (a
 * relay) over a WebSocket to the `/ws` the controller gave. What the relay control tunnel will
 * replace: a channel to the relay over its control connection, so that nothing but the
 * deployment's public endpoint has to be reachable from here.
 */
export function directOpener(node: MediaNode, options: { timeoutMs: number }): NodeOpener {
  return async (target, remoteAddress) => {
    if (!target || target.nodeId === node.id) {
      const [ours, theirs] = createChannelPair();
      return { channel: ours, session: node.attachSession(theirs, remoteAddress) };
    }
    return { channel: await openWebSocket(target.url, '/ws', { timeoutMs: options.timeoutMs }) };
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
