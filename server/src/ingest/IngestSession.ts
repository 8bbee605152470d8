import { randomBytes } from 'node:crypto';
import type { types } from 'mediasoup';
import { CascadeError, TypedEmitter, type Logger } from '@cascade/protocol';
import type { TokenService } from '@cascade/controller';
import type { MediaNode, Session } from '@cascade/sfu';
import { localNodeClient, type NodeClient } from '../signalling/nodeClient.js';

export type IngestSessionEvents = {
  /** Fired once, whatever ended it (DELETE, media lost, taken over, node closing). */
  close: [reason: string];
  listenererror: [event: string, error: unknown];
};

/** What an HTTP ingest front end (WHIP, plain RTP) starts from: a stream published on the node's own signalling. */
export interface Published {
  client: NodeClient;
  /** The node's side of the conversation (its transports are real mediasoup objects). */
  session: Session;
  streamId: string;
  /** True when the POST took back a stream that was waiting for its broadcaster. */
  resumed: boolean;
}

/**
 * Publish on `node` as a client of its signalling, with the broadcaster's own token: the
 * stream then has PublisherService's lifecycle (listing, grace on loss, takeover, key frame
 * throttle) exactly as a stream from the SDK. `setup` builds the transports and producers;
 * if it fails, a stream this call created is ended at once and nothing is left behind.
 */
export async function publishLocally<T>(
  node: MediaNode,
  request: { token: string; title?: string; remoteAddress: string },
  options: { requestTimeoutMs: number },
  setup: (p: Published) => Promise<T>,
): Promise<T> {
  const { client, session } = localNodeClient(node, request.remoteAddress, options);
  let published: Published | undefined;
  try {
    const res = await client.request('stream.publish', { token: request.token, resume: true, ...(request.title ? { title: request.title } : {}) });
    published = { client, session, streamId: res.streamId, resumed: res.resumed };
    return await setup(published);
  } catch (err) {
    if (published && !published.resumed) await client.request('stream.unpublish', {}).catch(() => {});
    client.close(1000, 'ingest setup failed');
    throw err;
  }
}

/**
 * A broadcaster that reached the origin over HTTP (a "WHIP session", an RTP ingest): the
 * resource DELETE and PATCH act on. The node ends it when the stream ends or a newer POST
 * takes the stream over; it ends itself when its media stops (`idleTimeoutMs` without a
 * byte on any of its transports), which leaves the stream reconnecting for the grace period.
 */
export class IngestSession extends TypedEmitter<IngestSessionEvents> {
  /** Unguessable: the resource URL is all DELETE needs besides the owner's token. */
  readonly id = randomBytes(16).toString('base64url');
  readonly streamId: string;
  /** `sub` of the token that published; only it may DELETE or PATCH. */
  readonly owner: string;
  protected readonly client: NodeClient;
  protected readonly log: Logger;
  readonly #timer: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(
    published: Published,
    owner: string,
    watch: { transports: types.Transport[]; idleTimeoutMs: number; what: string; firstMediaTimeoutMs?: number },
    logger: Logger,
  ) {
    super();
    this.client = published.client;
    this.streamId = published.streamId;
    this.owner = owner;
    this.log = logger.child({ component: 'IngestSession', ingest: watch.what, ingestId: this.id, streamId: this.streamId });
    this.client.on('close', (code, reason) => this.#end(`signalling closed (${code} ${reason})`));
    // No ICE consent freshness in this mediasoup, and plain RTP has none: a sender that vanished is noticed by its silence.
    let lastBytes = 0;
    // Until the first byte, the sender may take longer to start (ffmpeg launched by hand).
    let lastActive = Date.now() + Math.max(0, (watch.firstMediaTimeoutMs ?? watch.idleTimeoutMs) - watch.idleTimeoutMs);
    this.#timer = setInterval(() => {
      void Promise.all(watch.transports.map((t) => t.getStats()))
        .then((all) => {
          const bytes = all.reduce((n, stats) => n + (stats[0]?.bytesReceived ?? 0), 0);
          if (bytes !== lastBytes) {
            lastBytes = bytes;
            lastActive = Date.now();
          } else if (Date.now() - lastActive >= watch.idleTimeoutMs) {
            this.lost(`no media for ${watch.idleTimeoutMs} ms`);
          }
        })
        .catch(() => {});
    }, Math.max(200, Math.min(2000, watch.idleTimeoutMs / 4)));
    this.#timer.unref();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** DELETE: the broadcaster is done; the stream ends for every viewer. */
  async unpublish(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.client.request('stream.unpublish', {});
    } finally {
      this.#end('deleted by the broadcaster');
    }
  }

  /** Stop without ending the stream (the node then waits for the broadcaster to come back). */
  close(reason = 'closed'): void {
    this.#end(reason);
  }

  protected lost(why: string): void {
    if (this.#closed) return;
    this.log.info({ why }, 'broadcaster lost; the stream waits for it to come back');
    this.#end(why);
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.client.close(1000, reason.slice(0, 100));
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }
}

/** The live ingest sessions of one kind, found by resource id for their owner only. */
export class IngestSessions<T extends IngestSession> {
  readonly #sessions = new Map<string, T>();
  readonly #tokens: TokenService;
  readonly #what: string;

  constructor(what: string, tokens: TokenService) {
    this.#what = what;
    this.#tokens = tokens;
  }

  get size(): number {
    return this.#sessions.size;
  }

  add(session: T): T {
    this.#sessions.set(session.id, session);
    session.once('close', () => this.#sessions.delete(session.id));
    return session;
  }

  /** 401 without a valid broadcast token, 404 for an unknown id, 403 for someone else's session. */
  owned(id: string, token: string | undefined): T {
    const claims = this.#tokens.verify(token, 'broadcast');
    const s = this.#sessions.get(id);
    if (!s) throw new CascadeError('CASCADE_ERR_HTTP_SESSION_NOT_FOUND', `${this.#what} ${id}`);
    if (s.owner !== claims.sub) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', `this ${this.#what} session belongs to another broadcaster`);
    return s;
  }

  close(reason: string): void {
    for (const s of [...this.#sessions.values()]) s.close(reason);
  }
}
