import { randomBytes } from 'node:crypto';
import type { types } from 'mediasoup';
import { CascadeError, TypedEmitter, type ConsumerInfo, type IceServer, type Logger, type NodeResult } from '@cascade/protocol';
import type { MessageChannel } from '@cascade/protocol';
import type { Session } from '@cascade/sfu';
import { buildAnswer, type AnswerMedia, type LocalTransport } from '../sdp/answer.js';
import type { ParsedOffer } from '../sdp/offer.js';
import { playbackAnswer, playbackSections, viewerCapabilities } from '../sdp/playback.js';
import { nodeClient, type NodeClient } from '../signalling/nodeClient.js';

/** A media node's signalling, reached for a WHEP viewer. */
export interface NodeChannel {
  channel: MessageChannel;
  /** The node's own end of the session when it runs in this process (its transports are visible then). */
  session?: Session;
}

/**
 * How WHEP reaches the deployment's signalling: a session with the node this process runs
 * (the public endpoint), which serves the player itself or through the relay the controller
 * picks, without WhepSession noticing.
 */
export type NodeOpener = (remoteAddress: string) => Promise<NodeChannel>;

export interface WhepSessionOptions {
  /** A player whose transport (locally visible) receives nothing for this long is gone, ms. */
  idleTimeoutMs: number;
  requestTimeoutMs: number;
}

export type WhepSessionEvents = {
  close: [reason: string];
  listenererror: [event: string, error: unknown];
};

type Served = Extract<NodeResult<'stream.watch'>, { action: 'serve' }>;

/** How long a POST waits for the stream's sources on a node that is still pulling it, ms. */
const FIRST_MEDIA_WAIT_MS = 4000;

/**
 * The consumers to answer with: those subscribe gave, plus those arriving as consumer.new
 * (into `late`) until every offered kind has one or `waitMs` passed.
 */
async function gather(initial: ConsumerInfo[], late: ConsumerInfo[], kinds: Set<string>, waitMs: number): Promise<ConsumerInfo[]> {
  const all = () => [...initial, ...late];
  const covered = () => [...kinds].every((k) => all().some((c) => c.kind === k));
  const deadline = Date.now() + waitMs;
  while (!covered() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return all();
}

/**
 * One WHEP viewer: a player that spoke SDP over HTTP, turned into a viewer of the node the
 * controller placed it on, by speaking the node signalling for it (stream.watch with the
 * controller's placement, transport.create, stream.subscribe, transport.connect, consumer.resume).
 * A broadcaster's new producers (it reconnected) are resumed on the same m= sections: the
 * player tells them apart by MID. The session ends when the player leaves (DELETE, DTLS
 * closed, silence), the stream ends, or the node goes or drains: a player then has to POST
 * again to be placed elsewhere.
 */
export class WhepSession extends TypedEmitter<WhepSessionEvents> {
  readonly id = randomBytes(16).toString('base64url');
  readonly streamId: string;
  /** The node serving the player. */
  readonly nodeId: string;
  readonly answer: string;
  readonly iceServers: IceServer[];
  etag = `"${randomBytes(9).toString('base64url')}"`;
  readonly #client: NodeClient;
  readonly #transportId: string;
  readonly #kinds: Set<string>;
  readonly #log: Logger;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  static async create(
    opener: NodeOpener,
    request: { offer: ParsedOffer; streamId: string; token?: string; remoteAddress: string },
    options: WhepSessionOptions,
    deps: { logger: Logger },
  ): Promise<WhepSession> {
    const sections = playbackSections(request.offer);
    const { streamId, remoteAddress } = request;
    const node = await opener(remoteAddress);
    const client = nodeClient(node.channel, options);
    try {
      const served: Served = await client.request('stream.watch', { streamId, ...(request.token ? { token: request.token } : {}) });
      const caps = viewerCapabilities(sections, served.rtpCapabilities as types.RtpCapabilities);
      if (!caps.codecs?.length) throw new CascadeError('CASCADE_ERR_SDP_UNSUPPORTED', 'no codec in common with the stream (Opus, VP8, H.264 Constrained Baseline)');
      const t = await client.request('transport.create', { direction: 'recv', rtpCapabilities: caps });
      // A relay placed a moment ago may still be opening its pipe: its sources come as consumer.new.
      const late: ConsumerInfo[] = [];
      const collect = (type: string, data: unknown) => type === 'consumer.new' && late.push(data as ConsumerInfo);
      client.on('notification', collect);
      const subscribed = await client.request('stream.subscribe', { transportId: t.id, rtpCapabilities: caps });
      const consumers = await gather(subscribed.consumers, late, new Set(sections.map((s) => s.kind)), FIRST_MEDIA_WAIT_MS);
      client.off('notification', collect);
      const answers = sections
        .map((s) => playbackAnswer(s, consumers.find((c) => c.kind === s.kind), streamId))
        .filter((a): a is AnswerMedia => a !== undefined);
      if (answers.length === 0) throw new CascadeError('CASCADE_ERR_STREAM_NOT_LIVE', `${streamId} has no media this player can receive yet`);
      const role = request.offer.setup === 'passive' ? 'server' : 'client';
      await client.request('transport.connect', { transportId: t.id, dtlsParameters: { role, fingerprints: request.offer.fingerprints } });
      const answer = buildAnswer(request.offer, t as unknown as LocalTransport, answers, String(Date.now()));
      const session = new WhepSession({ client, node, served, transportId: t.id, answer, kinds: new Set(answers.map((a) => a.kind)) }, options, deps.logger);
      for (const c of consumers) await session.#resume(c);
      return session;
    } catch (err) {
      client.close(1000, 'whep setup failed');
      throw err;
    }
  }

  private constructor(
    parts: { client: NodeClient; node: NodeChannel; served: Served; transportId: string; answer: string; kinds: Set<string> },
    options: WhepSessionOptions,
    logger: Logger,
  ) {
    super();
    const { client, served } = parts;
    this.#client = client;
    this.streamId = served.stream.id;
    this.nodeId = served.nodeId;
    this.iceServers = served.iceServers;
    this.answer = parts.answer;
    this.#transportId = parts.transportId;
    this.#kinds = parts.kinds;
    this.#log = logger.child({ component: 'WhepSession', whepId: this.id, streamId: this.streamId, nodeId: this.nodeId });
    client.on('close', (code, reason) => this.#end(`node signalling closed (${code} ${reason})`));
    client.on('notification', (type, data) => {
      switch (type) {
        case 'consumer.new':
          void this.#resume(data as ConsumerInfo);
          break;
        case 'stream.state':
          if ((data as { state: string }).state === 'ended') this.#end('stream ended');
          break;
        case 'node.draining':
          // The player cannot follow a move: ending the session now makes it reconnect and be placed again.
          this.#end('node draining');
          break;
        case 'transport.state':
          if ((data as { transportId: string }).transportId === this.#transportId) this.#end(`player gone (${(data as { state: string }).state})`);
          break;
      }
    });
    // On this process's node the transport is visible: a player that vanished without a word is noticed by its silence.
    // (A session forwarded to a relay has no transport here: the relay's heartbeats and the player's DTLS tell.)
    const local = parts.node.session;
    const transport = local && !local.closed && !local.forwardedTo ? local.transport(parts.transportId) : undefined;
    if (transport) this.#watchSilence(transport, options.idleTimeoutMs);
    this.#log.info({}, 'WHEP viewer connected');
  }

  get closed(): boolean {
    return this.#closed;
  }

  async restartIce(): Promise<{ usernameFragment: string; password: string }> {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_HTTP_SESSION_NOT_FOUND', this.id);
    const { iceParameters } = await this.#client.request('transport.restartIce', { transportId: this.#transportId });
    this.etag = `"${randomBytes(9).toString('base64url')}"`;
    return iceParameters as { usernameFragment: string; password: string };
  }

  close(reason = 'closed'): void {
    this.#end(reason);
  }

  async #resume(c: ConsumerInfo): Promise<void> {
    if (this.#closed || !this.#kinds.has(c.kind)) return;
    await this.#client.request('consumer.resume', { consumerId: c.id }).catch((err) => this.#log.debug({ err }, 'cannot resume a consumer'));
  }

  #watchSilence(transport: types.Transport, idleTimeoutMs: number): void {
    let last = -1;
    let since = Date.now();
    this.#timer = setInterval(() => {
      void transport
        .getStats()
        .then((stats) => {
          // ICE consent checks and RTCP receiver reports come in even when nothing else does.
          const bytes = stats[0]?.bytesReceived ?? 0;
          if (bytes !== last) {
            last = bytes;
            since = Date.now();
          } else if (Date.now() - since >= idleTimeoutMs) this.#end(`player silent for ${idleTimeoutMs} ms`);
        })
        .catch(() => {});
    }, Math.max(200, Math.min(5000, idleTimeoutMs / 4)));
    this.#timer.unref();
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#log.info({ reason }, 'WHEP viewer left');
    this.#client.close(1000, reason.slice(0, 100));
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }
}
