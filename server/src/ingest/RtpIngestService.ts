import { CascadeError, type Logger } from '@cascade/protocol';
import type { TokenService } from '@cascade/controller';
import type { MediaNode } from '@cascade/sfu';
import { IngestSessions } from './IngestSession.js';
import { RtpIngestSession, type RtpIngestOptions, type RtpVideoCodec } from './RtpIngestSession.js';

/** Plain RTP ingest on the origin: POST hands out ports for a stream, DELETE ends it (owner only). */
export class RtpIngestService {
  readonly sessions: IngestSessions<RtpIngestSession>;
  readonly #node: MediaNode;
  readonly #options: RtpIngestOptions;
  readonly #tokens: TokenService;
  readonly #log: Logger;
  #closed = false;

  constructor(node: MediaNode, options: RtpIngestOptions, deps: { tokens: TokenService; logger: Logger }) {
    this.#node = node;
    this.#options = options;
    this.#tokens = deps.tokens;
    this.#log = deps.logger;
    this.sessions = new IngestSessions('RTP ingest', deps.tokens);
  }

  async publish(request: { token: string | undefined; title?: string; video: RtpVideoCodec | undefined; audio: boolean; remoteAddress: string }): Promise<RtpIngestSession> {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_NODE_SHUTTING_DOWN');
    const claims = this.#tokens.verify(request.token, 'broadcast');
    const session = await RtpIngestSession.create(this.#node, { ...request, token: request.token!, owner: claims.sub }, this.#options, { logger: this.#log });
    return this.sessions.add(session);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.sessions.close('origin shutting down');
  }
}
