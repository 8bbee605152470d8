import { randomBytes } from 'node:crypto';
import type { types } from 'mediasoup';
import {
  CascadeError,
  MAX_LAYERS,
  type Logger,
  type NodeParams,
  type NodeResult,
  type StreamRecord,
  type StreamState,
} from '@cascade/protocol';
import type { TokenService } from '@cascade/controller';
import { LayeredSource, layerCount, ms, type ClientTransport, type ControlPlane, type LocalStream, type MediaNode, type NodeService, type Session } from '@cascade/sfu';

export interface PublisherServiceOptions {
  maxStreams: number;
  /** Streams one owner (token subject) may hold at once. */
  maxStreamsPerOwner: number;
  reconnectGraceMs: number;
  keyFrameRequestDelayMs: number;
  /** The same per simulcast layer, lowest first (see LayeredSource). */
  layerKeyFrameRequestDelayMs: readonly number[];
  iceServers: NodeResult<'stream.publish'>['iceServers'];
  /** How often the broadcaster is told its audience, ms. */
  viewerCountIntervalMs: number;
}

const ID_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

/** Short, unambiguous, URL-safe stream ids (no 0/o, 1/l). */
export function newStreamId(): string {
  const bytes = randomBytes(10);
  return [...bytes].map((b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('');
}

interface Published {
  record: StreamRecord;
  local: LocalStream;
  session: Session | undefined;
  graceTimer?: ReturnType<typeof setTimeout>;
}

/**
 * Broadcasters on the origin: `stream.publish` (with a broadcast token), `producer.create`,
 * `stream.unpublish`. Owns the stream lifecycle (waiting → live → reconnecting → ended): a
 * broadcaster whose connection drops has `reconnectGraceMs` to come back with the same id,
 * and viewers resume without rejoining because new producers replace the old ones.
 */
export class PublisherService implements NodeService {
  readonly #node: MediaNode;
  readonly #control: ControlPlane;
  readonly #tokens: TokenService;
  readonly #options: PublisherServiceOptions;
  readonly #log: Logger;
  readonly #streams = new Map<string, Published>();
  /** Stream ids being published (between the first check and the stream's creation), with their owner. */
  readonly #pending = new Map<string, string>();
  /** The public key of a stream opened here (integrity on), for its record. */
  readonly #integrityKey: ((streamId: string) => string | undefined) | undefined;

  constructor(
    node: MediaNode,
    options: PublisherServiceOptions,
    deps: { control: ControlPlane; tokens: TokenService; logger: Logger; integrityKey?: (streamId: string) => string | undefined },
  ) {
    this.#integrityKey = deps.integrityKey;
    this.#node = node;
    this.#control = deps.control;
    this.#tokens = deps.tokens;
    this.#options = options;
    this.#log = deps.logger.child({ component: 'PublisherService' });
  }

  /** Streams published here and not yet ended (re-put in the store by each heartbeat). */
  get records(): StreamRecord[] {
    return [...this.#streams.values()].map((p) => p.record);
  }

  attach(session: Session): void {
    session.peer
      .handle('stream.publish', (p) => this.#publish(session, p))
      .handle('stream.unpublish', async () => {
        const streamId = session.requireRole('publisher');
        await this.end(streamId, 'unpublished');
        return {};
      })
      .handle('producer.create', (p) => this.#produce(session, p));
  }

  /** End a stream now (broadcaster stopped, grace expired, or origin shutting down). */
  async end(streamId: string, reason: string): Promise<void> {
    const pub = this.#streams.get(streamId);
    if (!pub) return;
    this.#streams.delete(streamId);
    clearTimeout(pub.graceTimer);
    this.#log.info({ streamId, reason }, 'stream ended');
    pub.local.setState('ended');
    pub.record = { ...pub.record, state: 'ended', endedAt: Date.now(), updatedAt: Date.now() };
    await this.#save(pub.record);
    // Leave a moment for 'ended' to reach viewers and child relays before the routers go.
    setTimeout(() => {
      pub.local.close();
      if (pub.session && !pub.session.closed) pub.session.close(1000, 'stream ended');
    }, 500).unref();
  }

  /** Streams this origin left behind in the store (after its own restart) become reconnecting. */
  async adoptStale(records: StreamRecord[]): Promise<void> {
    for (const r of records) {
      if (r.originNodeId !== this.#node.id || r.state === 'ended' || this.#streams.has(r.id)) continue;
      const local = this.#node.openStream(r.id, { depth: 0, state: 'reconnecting', title: r.title, createdAt: r.createdAt });
      // A new key: the one before went with the process that had it.
      const { integrityKey: _lost, ...kept } = r;
      const key = this.#integrityKey?.(r.id);
      const pub: Published = { record: { ...kept, state: 'reconnecting', updatedAt: Date.now(), ...(key ? { integrityKey: key } : {}) }, local, session: undefined };
      this.#streams.set(r.id, pub);
      this.#startGrace(pub);
      await this.#save(pub.record);
    }
  }

  async #publish(session: Session, p: NodeParams<'stream.publish'>): Promise<NodeResult<'stream.publish'>> {
    const claims = this.#tokens.verify(p.token, 'broadcast');
    const streamId = p.streamId ?? claims.stream ?? newStreamId();
    if (claims.stream && claims.stream !== streamId) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'token is for another stream');
    // Before the first await, so that a burst of publishes on one session is one publish (the
    // others are out of order). The role itself is claimed once every check passed, with no
    // await before the stream is attached: a request in the same burst (unpublish,
    // transport.create) must not act as this stream's broadcaster before that.
    const done = session.beginRoleRequest();
    try {
      const existing = this.#streams.get(streamId);
      const { pub, resumed, rtpCapabilities } = existing
        ? await this.#resume(session, existing, claims.sub, p.resume === true)
        : await this.#create(session, streamId, claims.sub, p.title);
      session.log.info({ streamId, resumed, owner: claims.sub }, 'broadcaster connected');
      if (!resumed) await this.#save(pub.record);
      return { streamId, rtpCapabilities, iceServers: this.#options.iceServers, resumed };
    } finally {
      done();
    }
  }

  /** A stream carried here already: the same owner's new connection takes it over. */
  async #resume(session: Session, pub: Published, owner: string, resume: boolean) {
    this.#checkTakeover(pub, owner, resume);
    const rtpCapabilities = await pub.local.router.rtpCapabilities();
    // Whatever happened during the await decides now, with no await until the session is attached.
    if (this.#streams.get(pub.record.id) !== pub) throw new CascadeError('CASCADE_ERR_STREAM_ENDED', pub.record.id);
    this.#checkTakeover(pub, owner, resume);
    if (session.closed) throw new CascadeError('CASCADE_ERR_CLIENT_CLOSED');
    session.claimRole('publisher', pub.record.id);
    if (pub.session && !pub.session.closed) {
      pub.session.log.info({ streamId: pub.record.id }, 'broadcaster taken over by a newer connection');
      const old = pub.session;
      pub.session = undefined;
      old.close(4409, 'taken over by a newer connection');
    }
    this.#attach(pub, session);
    return { pub, resumed: true, rtpCapabilities };
  }

  #checkTakeover(pub: Published, owner: string, resume: boolean): void {
    if (pub.record.owner !== owner) throw new CascadeError('CASCADE_ERR_STREAM_ALREADY_LIVE', pub.record.id);
    if (pub.session && !pub.session.closed && !resume) {
      throw new CascadeError('CASCADE_ERR_STREAM_ALREADY_LIVE', `${pub.record.id} (pass resume to take over)`);
    }
  }

  /**
   * A new stream. Its id and its place in the limits are reserved before the first await and
   * given back if anything fails, so that concurrent publishes cannot both take one id, pass
   * a limit together, or leave a stream nobody broadcasts.
   */
  async #create(session: Session, streamId: string, owner: string, title: string | undefined) {
    if (this.#pending.has(streamId)) throw new CascadeError('CASCADE_ERR_STREAM_ALREADY_LIVE', `${streamId} is being published`);
    if (this.#streams.size + this.#pending.size >= this.#options.maxStreams) {
      throw new CascadeError('CASCADE_ERR_NODE_CAPACITY', `origin carries its maximum of ${this.#options.maxStreams} streams`);
    }
    if (this.#streamsOf(owner) >= this.#options.maxStreamsPerOwner) {
      throw new CascadeError('CASCADE_ERR_STREAM_OWNER_LIMIT', `at most ${this.#options.maxStreamsPerOwner} streams at once`);
    }
    this.#pending.set(streamId, owner);
    let local: LocalStream | undefined;
    try {
      const stored = (await this.#control.getStream(streamId))?.stream;
      if (stored && stored.state !== 'ended' && (stored.owner !== owner || stored.originNodeId !== this.#node.id)) {
        throw new CascadeError('CASCADE_ERR_STREAM_ALREADY_LIVE', streamId);
      }
      if (stored && stored.state === 'ended' && stored.owner !== owner) {
        throw new CascadeError('CASCADE_ERR_STREAM_ALREADY_LIVE', `${streamId} belongs to another broadcaster`);
      }
      const now = Date.now();
      const record: StreamRecord = {
        id: streamId,
        title: (title ?? '').trim().slice(0, 200) || 'Untitled stream',
        state: 'waiting',
        originNodeId: this.#node.id,
        owner,
        createdAt: now,
        updatedAt: now,
      };
      const old = this.#node.stream(streamId);
      if (old) old.close(); // an ended stream id being reused
      local = this.#node.openStream(streamId, { depth: 0, state: 'waiting', title: record.title, createdAt: now });
      const key = this.#integrityKey?.(streamId);
      if (key) record.integrityKey = key;
      const rtpCapabilities = await local.router.rtpCapabilities();
      if (session.closed) throw new CascadeError('CASCADE_ERR_CLIENT_CLOSED');
      session.claimRole('publisher', streamId);
      const pub: Published = { record, local, session: undefined };
      this.#streams.set(streamId, pub);
      this.#attach(pub, session);
      return { pub, resumed: false, rtpCapabilities };
    } catch (err) {
      if (local && this.#streams.get(streamId)?.local !== local) local.close();
      throw err;
    } finally {
      this.#pending.delete(streamId);
    }
  }

  /** Streams `owner` holds here (waiting, live or reconnecting) or is publishing right now. */
  #streamsOf(owner: string): number {
    let n = 0;
    for (const p of this.#streams.values()) if (p.record.owner === owner) n++;
    for (const o of this.#pending.values()) if (o === owner) n++;
    return n;
  }

  /** Make `session`, publisher of this stream, its broadcaster (synchronously: its close always starts the grace period). */
  #attach(pub: Published, session: Session): void {
    pub.session = session;
    clearTimeout(pub.graceTimer);
    this.#watchSession(pub, session);
  }

  async #produce(session: Session, p: NodeParams<'producer.create'>): Promise<NodeResult<'producer.create'>> {
    const streamId = session.requireRole('publisher');
    const pub = this.#streams.get(streamId);
    if (!pub || pub.session !== session) throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'not the current broadcaster');
    const transport = session.transport(p.transportId);
    if (transport.appData.direction !== 'send') throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'producers need a send transport');
    if ((p.rtpParameters.encodings?.length ?? 1) > MAX_LAYERS) {
      // Viewers and relays number layers 0..MAX_LAYERS-1: more would be layers nobody can ask for.
      throw new CascadeError('CASCADE_ERR_MEDIA_INVALID_RTP_PARAMETERS', `at most ${MAX_LAYERS} simulcast encodings`);
    }
    const kinds = (transport.appData.kinds ??= new Set<string>());
    if (kinds.has(p.kind)) throw new CascadeError('CASCADE_ERR_MEDIA_LIMIT', `already sending ${p.kind}`);
    kinds.add(p.kind);
    const layers = p.kind === 'video' ? Math.max(1, p.rtpParameters.encodings?.length ?? 1) : 0;
    let producer: types.Producer;
    let source: types.Producer;
    try {
      producer = await ms(
        transport.produce({
          kind: p.kind,
          rtpParameters: p.rtpParameters as types.RtpParameters,
          // Failovers make many viewers ask for a key frame at once; the broadcaster sees at most
          // one per period (per layer for simulcast: there the LayeredSource throttles each layer).
          keyFrameRequestDelay: layers > 1 ? Math.min(...this.#options.layerKeyFrameRequestDelayMs) : this.#options.keyFrameRequestDelayMs,
        }),
        'CASCADE_ERR_MEDIA_INVALID_RTP_PARAMETERS',
      );
      source = layerCount(producer) > 1 ? await this.#layered(transport, producer) : producer;
    } catch (err) {
      kinds.delete(p.kind);
      throw err;
    }
    if (session.closed || transport.closed) {
      // The broadcaster vanished while the worker created it: a producer nobody feeds must not become the source.
      producer.close();
      throw new CascadeError('CASCADE_ERR_CLIENT_CLOSED');
    }
    pub.local.setSource(source);
    if (pub.record.state !== 'live') await this.#setState(pub, 'live');
    session.log.info({ streamId, kind: p.kind, producerId: producer.id }, 'broadcaster producing');
    return { id: producer.id };
  }

  /** A simulcast producer's stream source: the same layers, each with its own key frame throttle. */
  async #layered(transport: ClientTransport, producer: types.Producer): Promise<types.Producer> {
    try {
      const layered = await LayeredSource.create(transport.appData.router, producer, { keyFrameRequestDelayMs: this.#options.layerKeyFrameRequestDelayMs });
      return layered.producer;
    } catch (err) {
      producer.close();
      throw err;
    }
  }

  #watchSession(pub: Published, session: Session): void {
    let last = -1;
    const timer = setInterval(() => {
      void this.#control
        .getStream(pub.record.id)
        .then((found) => {
          const viewers = found?.viewers ?? 0;
          if (viewers !== last && !session.closed) session.notify('stream.viewers', { streamId: pub.record.id, viewers });
          last = viewers;
        })
        .catch(() => {});
    }, this.#options.viewerCountIntervalMs);
    timer.unref();
    session.once('close', () => {
      clearInterval(timer);
      if (pub.session !== session || !this.#streams.has(pub.record.id)) return;
      pub.session = undefined;
      this.#log.info({ streamId: pub.record.id }, 'broadcaster disconnected; waiting for it to come back');
      void this.#setState(pub, 'reconnecting');
      this.#startGrace(pub);
    });
  }

  #startGrace(pub: Published): void {
    clearTimeout(pub.graceTimer);
    pub.graceTimer = setTimeout(() => void this.end(pub.record.id, 'broadcaster did not come back'), this.#options.reconnectGraceMs);
    pub.graceTimer.unref();
  }

  async #setState(pub: Published, state: StreamState): Promise<void> {
    pub.record = { ...pub.record, state, updatedAt: Date.now() };
    pub.local.setState(state);
    await this.#save(pub.record);
  }

  async #save(record: StreamRecord): Promise<void> {
    try {
      await this.#control.putStream(record);
    } catch (err) {
      // The store may be away; the next heartbeat writes the record again.
      this.#log.warn({ err, streamId: record.id }, 'cannot save stream record');
    }
  }
}
