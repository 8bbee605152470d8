import type { types } from 'mediasoup';
import {
  CascadeError,
  type ConsumerInfo,
  type IceServer,
  type NodeParams,
  type NodeResult,
} from '@cascade/protocol';
import type { LocalStream } from './LocalStream.js';
import type { MediaNode, NodeService } from './MediaNode.js';
import { fromMediasoup } from './mediasoupErrors.js';
import type { Session } from './Session.js';
import { forwardViewer } from './forwardViewer.js';
import { withIntegrityAnchor } from './integrity/anchor.js';
import { consumeEachSource } from './sources.js';
import { ViewerLayers, bandwidthManaged } from './layers/ViewerLayers.js';
import type { ClientWebRtcTransport } from './appData.js';

/** At most one key frame asked for per consumer in this long on a viewer's request (ms). */
const KEY_FRAME_ASK_GAP_MS = 1000;
/**
 * Viewers arriving from a failed node, their media transports up, wait for the others setting up
 * here to be ready too, at most this long after the first of them began to wait (ms; see
 * LocalStream.whenViewersReadyTogether), before their video is resumed: resuming asks for
 * a key frame, and one asked for by all of them together reaches all of them. Measured in the
 * flat-tree freeze benchmark: in 48 of 120 viewers, one viewer of a frozen relay was back at
 * about 480 ms and the others, ready a little later, waited for the next key frame slot (350 ms
 * per layer at the origin) and came back at about 820 ms. Together, the six werift viewers of a
 * killed relay now get their first key frame within a few ms of each other (p50 611 ms before,
 * 353 to 385 ms in two runs after). 300 rather than 150 (stop 32): the six werift viewers and
 * two pages of a killed or frozen relay, finishing their handshakes at once on a 2-core machine,
 * became ready over 200 to 300 ms, and at 150 the later ones missed the first group's key frame
 * and waited the throttle's 350 ms for the next: two groups about 330 ms apart in most rounds,
 * werift p95 836 ms killed and 1,698 ms frozen, against 669 and 840 ms at 300 in the same
 * session. Longer than the origin's throttle would gain nothing: the next key frame comes by then.
 */
const MOVERS_TOGETHER_MS = 300;
/** How long a resume waits for the viewer's media transport to come up at most (ms). */
const RESUME_DTLS_WAIT_MS = 1000;

export interface ViewerServiceOptions {
  iceServers: IceServer[];
  /**
   * The local stream a viewer with a valid ticket is served from. The origin has it or the
   * stream does not exist; a relay may get the viewer a moment before its assignment and
   * opens the stream in advance.
   */
  streamFor(streamId: string): LocalStream;
  /** A viewer holds its place only if its media transport connects within this time (ms). Default 10000. */
  connectDeadlineMs?: number;
  /**
   * Viewers' receipts (what they received, from which node), where this node is the viewers'
   * endpoint (the origin): every receiptIntervalMs, each to `onReceipt`. Absent: no receipts.
   */
  receipts?: {
    intervalMs: number;
    /** A viewer session was placed (here or on another node, reached through this endpoint). */
    onPlaced(session: Session, streamId: string, nodeId: string): void;
    onReceipt(session: Session, receipt: NodeParams<'viewer.receipt'>): Promise<boolean>;
  };
  /** Viewers' integrity reports about the node serving them, where this node is their endpoint. Absent: ignored. */
  onIntegrityReport?(session: Session, report: NodeParams<'viewer.integrity'>): void;
}

interface ViewerState {
  stream: LocalStream;
  transport: ClientWebRtcTransport | undefined;
  rtpCapabilities: types.RtpCapabilities | undefined;
  consumers: Map<string, types.Consumer>;
  /** Per consumer, when a key frame was last asked for on the viewer's behalf (consumer.requestKeyFrame). */
  keyFramesAskedAt: Map<string, number>;
  /** Set once the initial consumers exist; from then on new sources are pushed. */
  subscribed: boolean;
  /** The sources (local producer ids) this viewer has a consumer of, or one on its way: never two of one source. */
  taken: Set<string>;
  /** Quality, video layers, fast start (see ViewerLayers). */
  layers: ViewerLayers;
  /** New video consumers announced and not yet resumed by the viewer (or JOINING before it subscribed), those that can take a first key frame (takesFirstKeyFrame): each one's LocalStream.viewerVideoPending() done. */
  settingUp: Map<string, () => void>;
  /** Arriving from nodes it just lost (`exclude` on its watch): its video resumes together with the others arriving (MOVERS_TOGETHER_MS). */
  mover: boolean;
}

/**
 * Viewers: `stream.watch` (served here, or, when the controller places the viewer on another
 * node, carried there through the controller while the viewer keeps talking to this
 * endpoint), `stream.subscribe` (a consumer per source, and later ones pushed as
 * `consumer.new`), `consumer.resume`.
 */
export class ViewerService implements NodeService {
  readonly #node: MediaNode;
  readonly #options: ViewerServiceOptions;
  readonly #states = new WeakMap<Session, ViewerState>();

  constructor(node: MediaNode, options: ViewerServiceOptions) {
    this.#node = node;
    this.#options = options;
  }

  attach(session: Session): void {
    session.peer
      .handle('stream.watch', (p) => this.#watch(session, p))
      .handle('stream.subscribe', (p) => this.#subscribe(session, p))
      .handle('viewer.receipt', async (p) => {
        session.requireRole('viewer');
        const receipts = this.#options.receipts;
        return { counted: receipts ? await receipts.onReceipt(session, p) : false };
      })
      .handle('viewer.integrity', async (p) => {
        session.requireRole('viewer');
        this.#options.onIntegrityReport?.(session, p);
        return {};
      })
      .handle('consumer.resume', async ({ consumerId }) => {
        session.requireRole('viewer');
        const state = this.#states.get(session);
        const consumer = state?.consumers.get(consumerId);
        if (!state || !consumer) throw new CascadeError('CASCADE_ERR_MEDIA_CONSUMER_NOT_FOUND', consumerId);
        try {
          if (state.mover && consumer.kind === 'video') await this.#together(state, consumerId);
          await consumer.resume();
          state.layers.resumed(consumer);
          if (state.transport) whenMediaFlows(state.transport, () => settled(state, consumerId));
          else settled(state, consumerId);
        } catch (err) {
          // Its producer closed (the source was replaced) while the request was on its way to the
          // worker: the consumer is gone, and a consumer.closed follows.
          if (consumer.closed) throw new CascadeError('CASCADE_ERR_MEDIA_CONSUMER_NOT_FOUND', consumerId, { cause: err });
          throw fromMediasoup(err, 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS');
        }
        return {};
      })
      .handle('consumer.requestKeyFrame', async ({ consumerId }) => {
        session.requireRole('viewer');
        const state = this.#states.get(session);
        const consumer = state?.consumers.get(consumerId);
        if (!state || !consumer) throw new CascadeError('CASCADE_ERR_MEDIA_CONSUMER_NOT_FOUND', consumerId);
        // One a second is what a stopped picture needs; more would only press on the broadcaster (throttled at the origin anyway).
        const now = Date.now();
        if (consumer.kind !== 'video' || consumer.closed || now - (state.keyFramesAskedAt.get(consumerId) ?? 0) < KEY_FRAME_ASK_GAP_MS) return { requested: false };
        state.keyFramesAskedAt.set(consumerId, now);
        await consumer.requestKeyFrame().catch((err: unknown) => session.log.debug({ err, consumerId }, 'cannot ask for a key frame'));
        session.log.info({ consumerId }, 'viewer asks for a key frame: its picture stopped while packets came');
        return { requested: true };
      })
      .handle('quality.set', async ({ quality }) => {
        session.requireRole('viewer');
        const state = this.#states.get(session);
        if (!state) throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'stream.watch has not finished');
        return state.layers.set(quality);
      });
  }

  async #watch(session: Session, p: NodeParams<'stream.watch'>): Promise<NodeResult<'stream.watch'>> {
    // A burst of watches (or a watch during a publish) on one session is one request.
    const done = session.beginRoleRequest();
    try {
      return await this.#watchOnce(session, p);
    } finally {
      done();
    }
  }

  async #watchOnce(session: Session, p: NodeParams<'stream.watch'>): Promise<NodeResult<'stream.watch'>> {
    const node = this.#node;
    const mover = (p.exclude?.length ?? 0) > 0;
    if (p.ticket) {
      node.tickets.verifyViewer(p.ticket, node.id, p.streamId);
      // The controller reserved this viewer's place here.
      return this.#serveReserved(session, p.streamId, mover);
    }
    const { placement, integrityKey } = await node.control.placeViewer({
      streamId: p.streamId,
      ...(p.exclude ? { exclude: p.exclude } : {}),
      ...(p.token ? { token: p.token } : {}),
    });
    const receipts = this.#options.receipts;
    // The stream's key reaches the viewer from here, never from the node serving it.
    const res = withIntegrityAnchor(
      placement.nodeId === node.id
        ? await this.#serveReserved(session, p.streamId, mover)
        : await forwardViewer(session, node.control, { streamId: p.streamId, placement, timeoutMs: node.options.signalling.requestTimeoutMs, ...(p.exclude ? { exclude: p.exclude } : {}) }),
      integrityKey,
      session.log,
    );
    if (!receipts) return res;
    receipts.onPlaced(session, p.streamId, res.nodeId);
    return { ...res, receiptIntervalMs: receipts.intervalMs };
  }

  /** Serve a viewer whose place the controller reserved on this node; give the place back if that fails. */
  async #serveReserved(session: Session, streamId: string, mover: boolean): Promise<NodeResult<'stream.watch'>> {
    try {
      if (session.closed) throw new CascadeError('CASCADE_ERR_CLIENT_CLOSED');
      return await this.#serve(session, this.#options.streamFor(streamId), mover);
    } catch (err) {
      // #serve throws only before the viewer is counted here.
      this.#viewerLeft(session, streamId);
      throw err;
    }
  }

  async #serve(session: Session, stream: LocalStream, mover: boolean): Promise<NodeResult<'stream.watch'>> {
    if (stream.state === 'ended') throw new CascadeError('CASCADE_ERR_STREAM_ENDED', stream.id);
    const rtpCapabilities = await stream.router.rtpCapabilities();
    if (session.closed) throw new CascadeError('CASCADE_ERR_CLIENT_CLOSED');
    session.claimRole('viewer', stream.id);
    const layers = new ViewerLayers(session, stream, {
      addVideo: async () => {
        const video = stream.sources.find((p) => p.kind === 'video');
        if (!state.subscribed || !video) return;
        const info = await this.#consume(session, state, video);
        if (info) session.notify('consumer.new', info);
      },
      removeVideo: () => {
        for (const c of [...state.consumers.values()]) {
          if (c.kind !== 'video') continue;
          c.close();
          session.notify('consumer.closed', { consumerId: c.id });
        }
      },
    });
    const state: ViewerState = { stream, transport: undefined, rtpCapabilities: undefined, consumers: new Map(), keyFramesAskedAt: new Map(), subscribed: false, taken: new Set(), layers, settingUp: new Map(), mover };
    // A viewer arriving (often one whose node failed) is counted from now until it resumes its video.
    state.settingUp.set(JOINING, stream.viewerVideoPending());
    this.#states.set(session, state);
    stream.addViewer(session.id);
    const onState = (s: LocalStream['state']) => session.notify('stream.state', { streamId: stream.id, state: s });
    const onSource = (producer: types.Producer) => {
      if (state.subscribed) void this.#push(session, state, producer);
    };
    stream.on('statechange', onState);
    stream.on('sourceadd', onSource);
    // A place is held by a viewer that really connects: one that does not within the deadline gives it back.
    const deadline = setTimeout(() => {
      if (state.transport?.appData.connected) return;
      session.fail(new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'no media transport connected in time'));
    }, this.#options.connectDeadlineMs ?? 10_000);
    deadline.unref();
    session.once('close', () => {
      clearTimeout(deadline);
      stream.off('statechange', onState);
      stream.off('sourceadd', onSource);
      stream.removeUser('viewers', session.id);
      for (const done of state.settingUp.values()) done();
      state.settingUp.clear();
      state.layers.close();
      this.#viewerLeft(session, stream.id);
    });
    session.log.info({ streamId: stream.id }, 'viewer joined');
    return {
      action: 'serve',
      nodeId: this.#node.id,
      rtpCapabilities,
      iceServers: this.#options.iceServers,
      stream: stream.info(),
    };
  }

  /**
   * A viewer arriving from a failed node is ready to take its video (its transport is up, a key
   * frame sent now would reach it): counted as ready, it waits with the others ready for those
   * still setting up here (MOVERS_TOGETHER_MS after the first began to wait at most), so that the
   * key frame their resumes ask for reaches them all.
   */
  async #together(state: ViewerState, consumerId: string): Promise<void> {
    const transport = state.transport;
    if (transport) {
      await new Promise<void>((resolve) => {
        const cap = setTimeout(() => (stopWaiting(), resolve()), RESUME_DTLS_WAIT_MS);
        const stopWaiting = whenMediaFlows(transport, () => (clearTimeout(cap), resolve()));
      });
    }
    settled(state, consumerId);
    await state.stream.whenViewersReadyTogether(MOVERS_TOGETHER_MS);
  }

  #viewerLeft(session: Session, streamId: string): void {
    try {
      this.#node.control.viewerLeft(streamId);
    } catch (err) {
      session.log.warn({ err }, 'cannot report viewer departure');
    }
  }

  async #subscribe(session: Session, p: NodeParams<'stream.subscribe'>): Promise<NodeResult<'stream.subscribe'>> {
    session.requireRole('viewer');
    const state = this.#states.get(session);
    if (!state) throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'stream.watch has not finished');
    if (state.transport) throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'already subscribed');
    const transport = session.webRtcTransport(p.transportId);
    if (transport.appData.direction !== 'recv') {
      throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'subscribe needs a recv transport');
    }
    state.transport = transport;
    state.rtpCapabilities = p.rtpCapabilities as types.RtpCapabilities;
    state.layers.init(p.quality ?? 'auto');
    // Video left out on purpose ('audio') does not count as a source the viewer could not take.
    let skipped = 0;
    // A relay changing parents: the new parent's sources, not the old ones about to close.
    await state.stream.whenSourcesFresh();
    const { results, attempted } = await consumeEachSource(
      () => state.stream.sources,
      (producer) => (producer.kind === 'video' && !state.layers.wantsVideo ? (skipped++, Promise.resolve(undefined)) : this.#consume(session, state, producer)),
    );
    const consumers = results.filter((c): c is ConsumerInfo => c !== undefined);
    // Counted until its video consumer is resumed (or at once when it takes none).
    const joining = state.settingUp.get(JOINING);
    state.settingUp.delete(JOINING);
    const video = consumers.find((c) => c.kind === 'video');
    if (joining && video && takesFirstKeyFrame(state, video.id)) state.settingUp.set(video.id, joining);
    else joining?.();
    if (attempted - skipped > 0 && consumers.length === 0) {
      // Nothing was consumed: undo, so that the viewer may subscribe again (other capabilities, or once sources exist).
      state.transport = undefined;
      state.rtpCapabilities = undefined;
      throw new CascadeError('CASCADE_ERR_MEDIA_CANNOT_CONSUME', 'no codec in common with the stream');
    }
    state.subscribed = true;
    return { consumers };
  }

  /**
   * A source of this viewer's went away (replaced by a relay's new parent, a broadcaster back):
   * every current source it wants and has no consumer of gets one now. The stream's `sourceadd`
   * announces the new one first, so this finds nothing to do, unless that was missed: traced in
   * the inner-relay freeze benchmark, two werift viewers arriving at a relay as it changed parents
   * had a consumer of the old source only, lost it, and waited 15 s with no video at all.
   */
  #catchUp(session: Session, state: ViewerState): void {
    if (!state.subscribed || session.closed) return;
    for (const producer of state.stream.sources) {
      if (producer.closed || state.taken.has(producer.id)) continue;
      void this.#push(session, state, producer).then((added) => added && session.log.warn({ kind: producer.kind }, 'a source had no consumer for this viewer: added'));
    }
  }

  /** A consumer of a source that came after the subscription, announced (`consumer.new`); whether one was made. */
  async #push(session: Session, state: ViewerState, producer: types.Producer): Promise<boolean> {
    // Counted until this viewer resumes its new video consumer (see LocalStream.viewerVideoPending), if it can take the first key frame.
    const done = producer.kind === 'video' ? state.stream.viewerVideoPending() : undefined;
    const info = await this.#consume(session, state, producer);
    if (!info) {
      done?.();
      return false;
    }
    if (done && takesFirstKeyFrame(state, info.id)) state.settingUp.set(info.id, done);
    else done?.();
    session.notify('consumer.new', info);
    return true;
  }

  async #consume(session: Session, state: ViewerState, producer: types.Producer): Promise<ConsumerInfo | undefined> {
    const transport = state.transport!;
    if (producer.kind === 'video' && !state.layers.wantsVideo) return undefined;
    if (state.taken.has(producer.id)) return undefined;
    state.taken.add(producer.id);
    const router = transport.appData.router;
    const streamRouter = state.stream.router;
    let consumer: types.Consumer | undefined;
    try {
      const producerId = await streamRouter.ensureProducer(router, producer);
      if (!router.canConsume({ producerId, rtpCapabilities: state.rtpCapabilities! })) {
        session.log.info({ kind: producer.kind }, 'viewer cannot consume this producer');
        return undefined;
      }
      consumer = await transport.consume({ producerId, rtpCapabilities: state.rtpCapabilities!, paused: true, ...state.layers.consumeOptions(producer) });
      // The viewer left, or chose 'audio' while this video consumer was being created.
      if (session.closed || (consumer.kind === 'video' && !state.layers.wantsVideo)) {
        consumer.close();
        return undefined;
      }
      streamRouter.addConsumer(router, 1);
      state.consumers.set(consumer.id, consumer);
      const id = consumer.id;
      consumer.observer.once('close', () => {
        streamRouter.addConsumer(router, -1);
        state.consumers.delete(id);
        state.keyFramesAskedAt.delete(id);
        state.taken.delete(producer.id);
        settled(state, id);
      });
      consumer.once('producerclose', () => {
        session.notify('consumer.closed', { consumerId: id });
        this.#catchUp(session, state);
      });
      state.layers.adopt(consumer, producer);
      return { id: consumer.id, producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters as ConsumerInfo['rtpParameters'] };
    } catch (err) {
      // The producer or the transport went away meanwhile; the viewer learns from later events.
      if (!producer.closed && !transport.closed) session.log.warn({ err }, 'cannot create consumer');
      return undefined;
    } finally {
      if (!consumer || consumer.closed) state.taken.delete(producer.id);
    }
  }
}

/** state.settingUp's key for a viewer that has not subscribed yet. */
const JOINING = 'joining';

/**
 * Whether a relay's new parent is worth holding for this viewer's new video consumer (see
 * LocalStream.viewerVideoPending): not for one whose bitrate a bandwidth estimate manages, which
 * cannot take the first key frame anyway (see bandwidthManaged).
 */
function takesFirstKeyFrame(state: ViewerState, consumerId: string): boolean {
  const consumer = state.consumers.get(consumerId);
  return consumer !== undefined && !bandwidthManaged(consumer.rtpParameters);
}

/**
 * Once the viewer's media transport can carry a key frame (DTLS up, or never to be): a viewer
 * arriving from a failed node resumes its consumers before its handshake ends (traced at a
 * relay: werift viewers resumed 120 to 130 ms before their DTLS was up), and a key frame sent before
 * then is lost on it. Returns what stops the wait.
 */
function whenMediaFlows(transport: ClientWebRtcTransport, then: () => void): () => void {
  const waiting = (s: types.DtlsState) => s === 'new' || s === 'connecting';
  if (transport.closed || !waiting(transport.dtlsState)) {
    then();
    return () => {};
  }
  const onState = (s: types.DtlsState) => {
    if (waiting(s)) return;
    transport.off('dtlsstatechange', onState);
    then();
  };
  transport.on('dtlsstatechange', onState);
  return () => transport.off('dtlsstatechange', onState);
}

/** The viewer is done with a new video consumer (resumed, or it closed): no longer counted as setting up. */
function settled(state: ViewerState | undefined, consumerId: string): void {
  state?.settingUp.get(consumerId)?.();
  state?.settingUp.delete(consumerId);
}
