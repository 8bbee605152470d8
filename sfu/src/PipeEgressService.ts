import type { types } from 'mediasoup';
import {
  CascadeError,
  MAX_LAYERS,
  type NodeParams,
  type NodeResult,
  type PipeProducerInfo,
} from '@cascade/protocol';
import type { LocalStream } from './LocalStream.js';
import type { MediaNode, NodeService } from './MediaNode.js';
import { ms } from './mediasoupErrors.js';
import { pipeTransportOptions } from './pipeTransport.js';
import type { Session } from './Session.js';
import { consumeEachSource } from './sources.js';
import { LayeredPipeConsumer } from './layers/layeredPipe.js';
import { layerCount } from './layers/quality.js';
import { IntegrityChannel } from './integrity/IntegrityChannel.js';
import type { StreamRouterHandle } from './appData.js';

/**
 * The parent side of a relay pipe: a child relay holding a pipe ticket for a stream this node
 * carries gets an SRTP PipeTransport with a pipe consumer per source. Source changes (a new
 * broadcaster connection, this node's own new parent) are pushed as pipe.producer.new/closed.
 */
/** Pipes of one stream a parent keeps open to one relay: the current one and a move's new one. */
const MAX_PIPES_PER_CHILD = 2;

/** How long a pipe opened with `holdVideo` waits for the child's word before its video flows anyway (ms). */
const HOLD_MAX_MS = 1000;

/** Per pipe session: its simulcast video sent layer by layer, the layers the child wants, whether held. */
interface LayerState {
  stream: LocalStream;
  max: number;
  pipes: Set<LayeredPipeConsumer>;
  /** Opened with holdVideo and not yet released: no video sent (see pipe.open). */
  held: boolean;
}

/** Start the video of a held pipe (the child's first pipe.layers, or HOLD_MAX_MS). */
async function release(state: LayerState): Promise<void> {
  if (!state.held) return;
  state.held = false;
  await Promise.all([...state.pipes].map((l) => l.release()));
}

export class PipeEgressService implements NodeService {
  readonly #node: MediaNode;
  /** Per pipe session: its simulcast video sent layer by layer, and the stream it pipes. */
  readonly #layered = new WeakMap<Session, LayerState>();

  constructor(node: MediaNode) {
    this.#node = node;
  }

  attach(session: Session): void {
    session.peer.handle('pipe.open', (p) => this.#open(session, p)).handle('pipe.layers', async ({ maxSpatialLayer }) => {
      session.requireRole('pipe');
      const state = this.#layered.get(session);
      if (!state) throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'the pipe is not open yet');
      if (maxSpatialLayer !== state.max) {
        state.max = maxSpatialLayer;
        state.stream.layers.setChild(session.id, maxSpatialLayer);
        await Promise.all([...state.pipes].map((l) => l.setMax(maxSpatialLayer)));
      }
      await release(state);
      return {};
    });
  }

  async #open(session: Session, p: NodeParams<'pipe.open'>): Promise<NodeResult<'pipe.open'>> {
    const node = this.#node;
    if (session.role !== 'none') throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', `session is already a ${session.role}`);
    const claims = node.tickets.verifyPipe(p.ticket, node.id, p.streamId);
    if (p.ip !== claims.childIp) {
      // Media goes only to the address the controller probed, never where the relay says.
      throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', `pipe address must be ${claims.childIp}`);
    }
    const stream = node.stream(p.streamId);
    if (!stream || stream.state === 'ended') throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', p.streamId);
    session.claimRole('pipe', p.streamId);
    try {
      return await this.#setUp(session, stream, claims.child, p);
    } catch (err) {
      session.releaseRole();
      throw err;
    }
  }

  async #setUp(
    session: Session,
    stream: LocalStream,
    childId: string,
    p: NodeParams<'pipe.open'>,
  ): Promise<NodeResult<'pipe.open'>> {
    const node = this.#node;
    const router = await stream.router.routerForConsumer();
    const listen = node.pipeListenIpFor(p.ip);
    const pipe = await router.createPipeTransport(pipeTransportOptions(listen, { streamId: stream.id, childId }));
    session.addPipeTransport(pipe);
    await ms(pipe.connect({ ip: p.ip, port: p.port, srtpParameters: p.srtpParameters as types.SrtpParameters }));

    // The child wants these layers (its viewers' qualities, its children's demand); the lowest always flows.
    const layerState: LayerState = { stream, max: p.maxSpatialLayer ?? MAX_LAYERS - 1, pipes: new Set<LayeredPipeConsumer>(), held: p.holdVideo === true };
    this.#layered.set(session, layerState);
    if (layerState.held) {
      // A child that never asks is sent its video anyway, a moment later.
      const timer = setTimeout(() => void release(layerState), HOLD_MAX_MS);
      timer.unref();
      session.once('close', () => clearTimeout(timer));
    }
    const consumed = new Set<string>();
    const consume = async (producer: types.Producer): Promise<PipeProducerInfo | undefined> => {
      if (consumed.has(producer.id)) return undefined;
      consumed.add(producer.id);
      try {
        const producerId = await stream.router.ensureProducer(router, producer);
        const layers = layerCount(producer);
        if (layers > 1) return await this.#consumeLayers(session, pipe, router, stream, producerId, layers, layerState);
        const consumer = await pipe.consume({ producerId });
        stream.router.addConsumer(router, 1);
        consumer.observer.once('close', () => stream.router.addConsumer(router, -1));
        consumer.once('producerclose', () => session.notify('pipe.producer.closed', { producerId }));
        return { id: producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters as PipeProducerInfo['rtpParameters'], paused: consumer.producerPaused };
      } catch (err) {
        if (!producer.closed && !pipe.closed) session.log.warn({ err }, 'cannot pipe producer');
        return undefined;
      }
    };

    const producers = (await consumeEachSource(() => stream.sources, consume)).results.filter((i): i is PipeProducerInfo => i !== undefined);
    const integrity = await IntegrityChannel.of(stream, { logger: session.log })
      .consumeOn(pipe, router)
      .catch((err) => void session.log.warn({ err }, 'no digest channel on this pipe'));
    // The child may have gone while we awaited: registering it now would count a child nobody feeds, forever.
    if (session.closed) throw new CascadeError('CASCADE_ERR_CLIENT_CLOSED');
    const onSource = (producer: types.Producer) =>
      void consume(producer).then((info) => info && session.notify('pipe.producer.new', info));
    const onState = (state: LocalStream['state']) => session.notify('stream.state', { streamId: stream.id, state });
    const onDepth = (depth: number) => session.notify('pipe.depth', { depth: depth + 1 });
    stream.on('sourceadd', onSource);
    stream.on('statechange', onState);
    stream.on('depthchange', onDepth);
    // A relay gets at most two pipes of a stream from one parent (the second for a move
    // make-before-break): each ticket opens one pipe, and more tickets must not mean more copies.
    for (const older of stream.childSessions(childId).slice(0, -(MAX_PIPES_PER_CHILD - 1))) {
      session.log.warn({ streamId: stream.id, childId }, 'relay opened another pipe of this stream: closing its oldest');
      this.#node.sessions.find((s) => s.id === older)?.close(4409, 'CASCADE_ERR_RELAY_NOT_ASSIGNED');
    }
    stream.addChild(session.id, childId);
    stream.layers.setChild(session.id, layerState.max);
    session.once('close', () => {
      stream.layers.setChild(session.id, undefined);
      stream.off('sourceadd', onSource);
      stream.off('statechange', onState);
      stream.off('depthchange', onDepth);
      stream.removeUser('children', session.id);
      session.log.info({ streamId: stream.id, childId }, 'child pipe closed');
    });
    session.log.info({ streamId: stream.id, childId, producers: producers.length }, 'child pipe open');
    return {
      ip: pipe.tuple.localIp,
      port: pipe.tuple.localPort,
      srtpParameters: pipe.srtpParameters!,
      depth: stream.depth + 1,
      state: stream.state,
      producers,
      ...(integrity ? { integrity } : {}),
    };
  }

  /** A simulcast source down the pipe one layer per stream, those above the child's demand paused. */
  async #consumeLayers(
    session: Session,
    pipe: types.PipeTransport,
    router: StreamRouterHandle,
    stream: LocalStream,
    producerId: string,
    layers: number,
    state: LayerState,
  ): Promise<PipeProducerInfo> {
    const layered = await LayeredPipeConsumer.create(pipe, router, { producerId, layers, maxSpatialLayer: state.max, hold: state.held });
    state.pipes.add(layered);
    for (const c of layered.consumers) {
      stream.router.addConsumer(router, 1);
      c.observer.once('close', () => stream.router.addConsumer(router, -1));
    }
    const first = layered.consumers[0]!;
    first.once('producerclose', () => session.notify('pipe.producer.closed', { producerId }));
    first.observer.once('close', () => state.pipes.delete(layered));
    // The child may have asked for other layers, or for its video, while these were being created.
    if (state.max !== layered.maxSpatialLayer) await layered.setMax(state.max);
    if (!state.held) await layered.release();
    return { id: producerId, kind: 'video', rtpParameters: layered.rtpParameters as PipeProducerInfo['rtpParameters'], paused: first.producerPaused };
  }
}
