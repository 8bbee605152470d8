import type { types } from 'mediasoup';
import { CascadeError, type Logger } from '@cascade/protocol';
import type { TokenService } from '@cascade/controller';
import { MEDIA_CODECS, type MediaNode } from '@cascade/sfu';
import { IngestSessions } from '../ingest/IngestSession.js';
import { parseOffer } from '../sdp/offer.js';
import { WhipSession, type WhipSessionOptions } from './WhipSession.js';

/**
 * WHIP ingest (RFC 9725) on the origin: POST creates a WhipSession from an SDP offer and a
 * broadcast token; DELETE and PATCH act on one, for the token's owner only.
 */
export class WhipService {
  readonly sessions: IngestSessions<WhipSession>;
  readonly #node: MediaNode;
  readonly #options: WhipSessionOptions;
  readonly #tokens: TokenService;
  readonly #log: Logger;
  #caps: Promise<types.RtpCapabilities> | undefined;
  #closed = false;

  constructor(node: MediaNode, options: WhipSessionOptions, deps: { tokens: TokenService; logger: Logger }) {
    this.#node = node;
    this.#options = options;
    this.#tokens = deps.tokens;
    this.#log = deps.logger;
    this.sessions = new IngestSessions('WHIP', deps.tokens);
  }

  /** POST /whip. Auth first (401/403), then the offer (400/406), then the stream (409, 503…). */
  async publish(request: { sdp: string; token: string | undefined; title?: string; remoteAddress: string }): Promise<WhipSession> {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_NODE_SHUTTING_DOWN');
    const claims = this.#tokens.verify(request.token, 'broadcast');
    const offer = parseOffer(request.sdp);
    const caps = await this.#routerCapabilities();
    const session = await WhipSession.create(
      this.#node,
      { offer, token: request.token!, owner: claims.sub, remoteAddress: request.remoteAddress, caps, ...(request.title ? { title: request.title } : {}) },
      this.#options,
      { logger: this.#log },
    );
    return this.sessions.add(session);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.sessions.close('origin shutting down');
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
