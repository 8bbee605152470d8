import type { types } from 'mediasoup';
import { LayeredPipeConsumer } from './layeredPipe.js';
import { layerCount } from './quality.js';
import type { StreamRouterHandle } from '../appData.js';

export interface LayeredSourceOptions {
  /**
   * Minimum gap between key frame requests sent to the broadcaster, per spatial layer, lowest
   * first (ms); the last value holds for any layer beyond. A small key frame can be asked for
   * often; a large one is costly to the encoder and to every link it crosses.
   */
  keyFrameRequestDelayMs: readonly number[];
}

/** The throttle of `layer` in a per-layer list (the last one for layers beyond it). */
export function delayForLayer(delays: readonly number[], layer: number): number {
  if (delays.length === 0) return 0;
  return delays[Math.min(layer, delays.length - 1)]!;
}

/**
 * A broadcaster's simulcast producer as the stream's source, with a key frame throttle of its
 * own per layer. mediasoup throttles key frame requests per producer, one period for every
 * layer: long enough to spare the encoder the top layer's big key frames, it makes a viewer
 * joining on the lowest layer wait for its small one as long. So the producer is split into
 * one producer per layer (each with that layer's throttle) and merged again into the simulcast
 * producer viewers and relays consume, over a pipe transport pair on loopback inside the
 * router:
 *
 *   broadcaster ─► producer ─(a consumer held per layer)─► a ═► b: one producer per layer,
 *   throttled ─(a pipe consumer each)─► b ═► a: the merged producer (the stream's source)
 *
 * Key frame requests travel back the same way, each layer's through its own throttle. Costs two
 * loopback hops per packet, a fraction of a millisecond. The internal transports carry
 * `appData.internal` so that traffic figures leave them out.
 */
/** Each merged producer's broadcaster producer (see upstreamOf). */
const upstreams = new WeakMap<types.Producer, types.Producer>();

/** The producer a stream's source is built on: the broadcaster's own for a layered source, else itself. */
export function upstreamOf(source: types.Producer): types.Producer {
  return upstreams.get(source) ?? source;
}

export class LayeredSource {
  /** The merged simulcast producer: the stream's source. */
  readonly producer: types.Producer;
  readonly #transports: types.PipeTransport[];
  #closed = false;

  static async create(router: StreamRouterHandle, source: types.Producer, options: LayeredSourceOptions): Promise<LayeredSource> {
    const layers = layerCount(source);
    if (layers < 2) throw new TypeError('a layered source needs a simulcast producer');
    const pipe = (): Promise<types.PipeTransport> =>
      router.createPipeTransport({ listenIp: { ip: '127.0.0.1' }, enableRtx: true, appData: { internal: true, streamId: router.appData.streamId } });
    const a = await pipe();
    let b: types.PipeTransport | undefined;
    try {
      b = await pipe();
      await a.connect({ ip: '127.0.0.1', port: b.tuple.localPort });
      await b.connect({ ip: '127.0.0.1', port: a.tuple.localPort });
      // a → b: one stream per layer, each made a producer of its own with its own throttle.
      const split = await LayeredPipeConsumer.create(a, router, { producerId: source.id, layers, maxSpatialLayer: layers - 1 });
      const perLayer: types.Producer[] = [];
      for (const [layer, c] of split.consumers.entries()) {
        const e = c.rtpParameters.encodings![0]!;
        perLayer.push(
          await b.produce({
            kind: 'video',
            rtpParameters: {
              codecs: c.rtpParameters.codecs,
              headerExtensions: c.rtpParameters.headerExtensions ?? [],
              encodings: [{ ssrc: e.ssrc!, ...(e.rtx ? { rtx: { ssrc: e.rtx.ssrc } } : {}), ...(split.rtpParameters.encodings![layer]!.scalabilityMode ? { scalabilityMode: split.rtpParameters.encodings![layer]!.scalabilityMode } : {}) }],
              ...(c.rtpParameters.rtcp ? { rtcp: c.rtpParameters.rtcp } : {}),
            },
            keyFrameRequestDelay: delayForLayer(options.keyFrameRequestDelayMs, layer),
            appData: { layer },
          }),
        );
      }
      // b → a: the layers merged back into one simulcast producer (requests pass through unthrottled: the layers throttle).
      const merge = await Promise.all(perLayer.map((p) => b!.consume({ producerId: p.id })));
      const first = merge[0]!.rtpParameters;
      const merged = await a.produce({
        kind: 'video',
        rtpParameters: {
          codecs: first.codecs,
          headerExtensions: first.headerExtensions ?? [],
          encodings: merge.map((c, layer) => {
            const e = c.rtpParameters.encodings![0]!;
            return { ssrc: e.ssrc!, ...(e.rtx ? { rtx: { ssrc: e.rtx.ssrc } } : {}), scalabilityMode: split.rtpParameters.encodings![layer]!.scalabilityMode! };
          }),
          ...(first.rtcp ? { rtcp: first.rtcp } : {}),
        },
      });
      // What the broadcaster really sends (its upstream loss) is measured on the producer it feeds.
      upstreams.set(merged, source);
      return new LayeredSource(merged, [a, b], source);
    } catch (err) {
      a.close();
      b?.close();
      throw err;
    }
  }

  private constructor(producer: types.Producer, transports: types.PipeTransport[], source: types.Producer) {
    this.producer = producer;
    this.#transports = transports;
    // The broadcaster's producer gone (it left, its transport closed): so is everything built on it.
    source.observer.once('close', () => this.close());
    producer.observer.once('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#transports) t.close();
  }
}
