import { randomBytes } from 'node:crypto';
import type { types } from 'mediasoup';
import { CascadeError, type Logger } from '@cascade/protocol';
import type { MediaNode } from '@cascade/sfu';
import { IngestSession, publishLocally, type Published } from '../ingest/IngestSession.js';
import { buildAnswer, type LocalTransport } from '../sdp/answer.js';
import { ingestTracks } from '../sdp/ingest.js';
import type { ParsedOffer } from '../sdp/offer.js';

export interface WhipSessionOptions {
  /** A broadcaster whose transport receives nothing for this long is treated as disconnected, ms. */
  idleTimeoutMs: number;
  requestTimeoutMs: number;
}

/**
 * One WHIP session (RFC 9725): a broadcaster that spoke SDP over HTTP, turned into a client of
 * the origin's own signalling. It publishes with the bearer token, creates the send transport
 * and one producer per offered track, so the stream is one like any other. DTLS closing or
 * failing counts as the broadcaster lost, as does silence (IngestSession).
 */
export class WhipSession extends IngestSession {
  readonly answer: string;
  /** Entity tag of the current ICE session (changes with each ICE restart). */
  etag = `"${randomBytes(9).toString('base64url')}"`;
  readonly #transportId: string;

  /** Publish `offer` on `node`; resolves once the producers exist and the answer is written. */
  static async create(
    node: MediaNode,
    request: { offer: ParsedOffer; token: string; owner: string; title?: string; remoteAddress: string; caps: types.RtpCapabilities },
    options: WhipSessionOptions,
    deps: { logger: Logger },
  ): Promise<WhipSession> {
    // Everything about the offer is decided before the stream exists: a refused offer leaves no trace.
    const tracks = ingestTracks(request.offer, request.caps);
    return publishLocally(node, request, options, async (published) => {
      const { client } = published;
      const t = await client.request('transport.create', { direction: 'send' });
      const role = request.offer.setup === 'passive' ? 'server' : 'client';
      await client.request('transport.connect', { transportId: t.id, dtlsParameters: { role, fingerprints: request.offer.fingerprints } });
      for (const track of tracks) {
        await client.request('producer.create', { transportId: t.id, kind: track.kind, rtpParameters: track.rtpParameters as never });
      }
      const answer = buildAnswer(request.offer, t as unknown as LocalTransport, tracks.map((x) => x.answer), String(Date.now()));
      return new WhipSession(published, t.id, request.owner, answer, options, deps.logger);
    });
  }

  private constructor(published: Published, transportId: string, owner: string, answer: string, options: WhipSessionOptions, logger: Logger) {
    const transport = published.session.webRtcTransport(transportId);
    super(published, owner, { transports: [transport], idleTimeoutMs: options.idleTimeoutMs, what: 'WHIP' }, logger);
    this.answer = answer;
    this.#transportId = transportId;
    transport.on('dtlsstatechange', (state) => {
      if (state === 'failed' || state === 'closed') this.lost(`DTLS ${state}`);
    });
    transport.on('icestatechange', (state) => {
      if (state === 'disconnected') this.lost('ICE disconnected');
    });
    this.log.info({ transportId }, 'WHIP broadcaster connected');
  }

  /** ICE restart (PATCH with If-Match: *): new local credentials, a new entity tag. */
  async restartIce(): Promise<{ usernameFragment: string; password: string }> {
    if (this.closed) throw new CascadeError('CASCADE_ERR_HTTP_SESSION_NOT_FOUND', this.id);
    const { iceParameters } = await this.client.request('transport.restartIce', { transportId: this.#transportId });
    this.etag = `"${randomBytes(9).toString('base64url')}"`;
    this.log.info({}, 'WHIP ICE restart');
    return iceParameters as { usernameFragment: string; password: string };
  }
}
