import { randomBytes } from 'node:crypto';
import type { types } from 'mediasoup';
import { CascadeError, TypedEmitter, type Logger } from '@cascade/protocol';
import type { MediaNode, Session } from '@cascade/sfu';
import { buildAnswer } from '../sdp/answer.js';
import { ingestTracks } from '../sdp/ingest.js';
import type { ParsedOffer } from '../sdp/offer.js';
import { localNodeClient, type NodeClient } from '../signalling/nodeClient.js';

export interface WhipSessionOptions {
  /** A broadcaster whose transport receives nothing for this long is treated as disconnected, ms. */
  idleTimeoutMs: number;
  requestTimeoutMs: number;
}

export type WhipSessionEvents = {
  /** Fired once, whatever ended it (DELETE, media lost, taken over, node closing). */
  close: [reason: string];
  listenererror: [event: string, error: unknown];
};

/**
 * One WHIP session (RFC 9725 "WHIP session"): a broadcaster that spoke SDP over HTTP, turned
 * into a client of the origin's own signalling. It publishes with the bearer token, creates
 * the send transport and one producer per offered track, so the stream has the same lifecycle
 * as one published by the SDK: listed, relayed, key frames throttled, and a broadcaster lost
 * (DTLS closed, no media for idleTimeoutMs) leaves it reconnecting for the grace period, during
 * which a new POST with a token naming the stream takes it back.
 */
export class WhipSession extends TypedEmitter<WhipSessionEvents> {
  /** Unguessable: the resource URL is what DELETE and PATCH act on. */
  readonly id = randomBytes(16).toString('base64url');
  readonly streamId: string;
  /** `sub` of the token that published; only it may DELETE or PATCH. */
  readonly owner: string;
  readonly answer: string;
  /** Entity tag of the current ICE session (changes with each ICE restart). */
  etag: string = `"${randomBytes(9).toString('base64url')}"`;
  readonly #client: NodeClient;
  readonly #transport: types.WebRtcTransport;
  readonly #transportId: string;
  readonly #log: Logger;
  readonly #timer: ReturnType<typeof setInterval>;
  #closed = false;

  /** Publish `offer` on `node`; resolves once the producers exist and the answer is written. */
  static async create(
    node: MediaNode,
    request: { offer: ParsedOffer; token: string; owner: string; title?: string; remoteAddress: string; caps: types.RtpCapabilities },
    options: WhipSessionOptions,
    deps: { logger: Logger },
  ): Promise<WhipSession> {
    // Everything about the offer is decided before the stream exists: a refused offer leaves no trace.
    const tracks = ingestTracks(request.offer, request.caps);
    const { client, session } = localNodeClient(node, request.remoteAddress, { requestTimeoutMs: options.requestTimeoutMs });
    let published: { streamId: string; resumed: boolean } | undefined;
    try {
      published = await client.request('stream.publish', { token: request.token, resume: true, ...(request.title ? { title: request.title } : {}) });
      const t = await client.request('transport.create', { direction: 'send' });
      const dtlsRole = request.offer.setup === 'passive' ? 'server' : 'client';
      await client.request('transport.connect', { transportId: t.id, dtlsParameters: { role: dtlsRole, fingerprints: request.offer.fingerprints } });
      for (const track of tracks) {
        await client.request('producer.create', { transportId: t.id, kind: track.kind, rtpParameters: track.rtpParameters as never });
      }
      const answer = buildAnswer(request.offer, t as never, tracks.map((x) => x.answer), String(Date.now()));
      return new WhipSession({ client, session, transportId: t.id, streamId: published.streamId, owner: request.owner, answer }, options, deps.logger);
    } catch (err) {
      // A stream this request created and could not feed ends now; one taken over waits for its broadcaster as usual.
      if (published && !published.resumed) await client.request('stream.unpublish', {}).catch(() => {});
      client.close(1000, 'whip setup failed');
      throw err;
    }
  }

  private constructor(
    parts: { client: NodeClient; session: Session; transportId: string; streamId: string; owner: string; answer: string },
    options: WhipSessionOptions,
    logger: Logger,
  ) {
    super();
    const { client, transportId, streamId } = parts;
    this.#client = client;
    this.#transportId = transportId;
    this.#transport = parts.session.transport(transportId);
    this.streamId = streamId;
    this.owner = parts.owner;
    this.answer = parts.answer;
    this.#log = logger.child({ component: 'WhipSession', whipId: this.id, streamId });
    // The node ended the session (taken over by a newer POST, stream ended, node closing).
    client.on('close', (code, reason) => this.#end(`signalling closed (${code} ${reason})`));
    this.#transport.on('dtlsstatechange', (state) => {
      if (state === 'failed' || state === 'closed') this.#lost(`DTLS ${state}`);
    });
    this.#transport.on('icestatechange', (state) => {
      if (state === 'disconnected') this.#lost('ICE disconnected');
    });
    // No consent freshness in this mediasoup: a broadcaster that vanished is noticed by its silence.
    let lastBytes = -1;
    let lastActive = Date.now();
    this.#timer = setInterval(() => {
      void this.#transport
        .getStats()
        .then((stats) => {
          const bytes = stats[0]?.bytesReceived ?? 0;
          if (bytes !== lastBytes) {
            lastBytes = bytes;
            lastActive = Date.now();
          } else if (Date.now() - lastActive >= options.idleTimeoutMs) {
            this.#lost(`no media for ${options.idleTimeoutMs} ms`);
          }
        })
        .catch(() => {});
    }, Math.max(200, Math.min(2000, options.idleTimeoutMs / 4)));
    this.#timer.unref();
    this.#log.info({ transportId }, 'WHIP broadcaster connected');
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** ICE restart (PATCH with If-Match: *): new local credentials, a new entity tag. */
  async restartIce(): Promise<{ usernameFragment: string; password: string }> {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_HTTP_SESSION_NOT_FOUND', this.id);
    const { iceParameters } = await this.#client.request('transport.restartIce', { transportId: this.#transportId });
    this.etag = `"${randomBytes(9).toString('base64url')}"`;
    this.#log.info({}, 'WHIP ICE restart');
    return iceParameters as { usernameFragment: string; password: string };
  }

  /** DELETE: the broadcaster is done; the stream ends for every viewer. */
  async unpublish(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#client.request('stream.unpublish', {});
    } finally {
      this.#end('deleted by the broadcaster');
    }
  }

  /** Stop without ending the stream (the node then waits for the broadcaster to come back). */
  close(reason = 'closed'): void {
    this.#end(reason);
  }

  #lost(why: string): void {
    if (this.#closed) return;
    this.#log.info({ why }, 'WHIP broadcaster lost; the stream waits for it to come back');
    this.#end(why);
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#client.close(1000, reason);
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }
}
