import type { types } from 'mediasoup';
import { CascadeError, TypedEmitter, type Logger } from '@cascade/protocol';
import type { TokenService } from '@cascade/controller';
import { MEDIA_CODECS, type MediaNode } from '@cascade/sfu';
import { parseOffer } from '../sdp/offer.js';
import { WhipSession, type WhipSessionOptions } from './WhipSession.js';

export type WhipServiceObserverEvents = {
  newsession: [session: WhipSession];
  sessionclose: [session: WhipSession, reason: string];
  listenererror: [event: string, error: unknown];
};

/**
 * WHIP ingest (RFC 9725) on the origin: POST creates a WhipSession from an SDP offer and a
 * broadcast token; DELETE and PATCH act on one, for the token's owner only.
 */
export class WhipService {
  readonly observer = new TypedEmitter<WhipServiceObserverEvents>();
  readonly #node: MediaNode;
  readonly #options: WhipSessionOptions;
  readonly #tokens: TokenService;
  readonly #log: Logger;
  readonly #sessions = new Map<string, WhipSession>();
  #caps: Promise<types.RtpCapabilities> | undefined;
  #closed = false;

  constructor(node: MediaNode, options: WhipSessionOptions, deps: { tokens: TokenService; logger: Logger }) {
    this.#node = node;
    this.#options = options;
    this.#tokens = deps.tokens;
    this.#log = deps.logger;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** POST /whip. Auth first (401/403), then the offer (400/406), then the stream (409, 503…). */
  async publish(request: { sdp: string; token: string | undefined; title?: string; remoteAddress: string }): Promise<WhipSession> {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_NODE_SHUTTING_DOWN');
    const claims = this.#tokens.verify(request.token, 'broadcast');
    const offer = parseOffer(request.sdp);
    const session = await WhipSession.create(
      this.#node,
      { offer, token: request.token!, owner: claims.sub, remoteAddress: request.remoteAddress, caps: await this.#routerCapabilities(), ...(request.title ? { title: request.title } : {}) },
      this.#options,
      { logger: this.#log },
    );
    this.#sessions.set(session.id, session);
    session.once('close', (reason) => {
      this.#sessions.delete(session.id);
      this.observer.safeEmit('sessionclose', session, reason);
    });
    this.observer.safeEmit('newsession', session);
    return session;
  }

  /** The session behind a resource URL, for its owner: 401 without a valid token, 404 unknown, 403 someone else's. */
  session(id: string, token: string | undefined): WhipSession {
    const claims = this.#tokens.verify(token, 'broadcast');
    const s = this.#sessions.get(id);
    if (!s) throw new CascadeError('CASCADE_ERR_HTTP_SESSION_NOT_FOUND', id);
    if (s.owner !== claims.sub) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'this WHIP session belongs to another broadcaster');
    return s;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#sessions.values()]) s.close('origin shutting down');
  }

  /**
   * What every stream router offers (they are all built from MEDIA_CODECS), read once from a
   * router made for the purpose, so that an offer is judged before any stream exists.
   */
  #routerCapabilities(): Promise<types.RtpCapabilities> {
    this.#caps ??= (async () => {
      const router = await this.#node.pool.leastLoaded().createRouter({ mediaCodecs: MEDIA_CODECS });
      const caps = router.rtpCapabilities;
      router.close();
      return caps;
    })();
    this.#caps.catch(() => (this.#caps = undefined));
    return this.#caps;
  }
}
