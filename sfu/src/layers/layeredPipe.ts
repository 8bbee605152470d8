import type { types } from 'mediasoup';
import { temporalLayers } from './quality.js';

/** Header extensions that make no sense between two of our nodes: BWE (pipes have none) and MID (SSRCs tell the streams apart). */
const PIPE_DROPPED_EXTENSIONS = new Set([
  'urn:ietf:params:rtp-hdrext:sdes:mid',
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
]);

/** A router's capabilities as a layer consumer on a pipe uses them: no bandwidth estimation, no MID. */
export function pipeLayerCapabilities(router: types.RtpCapabilities): types.RtpCapabilities {
  return {
    codecs: (router.codecs ?? []).map((c) => ({ ...c, rtcpFeedback: (c.rtcpFeedback ?? []).filter((fb) => fb.type !== 'transport-cc' && fb.type !== 'goog-remb') })),
    headerExtensions: (router.headerExtensions ?? []).filter((e) => !PIPE_DROPPED_EXTENSIONS.has(e.uri)),
  };
}

type ConsumeOptions = {
  producerId: string;
  rtpCapabilities: types.RtpCapabilities;
  paused?: boolean;
  preferredLayers?: types.ConsumerLayers;
  appData?: Record<string, unknown>;
};
type Consume = (this: types.Transport, options: ConsumeOptions) => Promise<types.Consumer>;

/**
 * mediasoup 3.12's PipeTransport.consume() only makes pipe consumers, which forward every
 * layer of a simulcast producer whether anyone downstream wants it or not. The worker itself
 * runs any consumer type on a pipe transport; the generic Transport.consume() (the class
 * PipeTransport extends) asks it for the producer's own type, a simulcast consumer that
 * forwards one layer. Found once, checked: a mediasoup whose classes are shaped otherwise
 * fails loudly here rather than piping the wrong thing.
 */
function genericConsume(pipe: types.PipeTransport): Consume {
  const base = Object.getPrototypeOf(Object.getPrototypeOf(pipe)) as { consume?: Consume; constructor?: { name?: string } } | null;
  if (!base?.consume || base.consume === (pipe as unknown as { consume: unknown }).consume || base.constructor?.name !== 'Transport') {
    throw new Error('mediasoup: cannot find Transport.consume() under PipeTransport (version mismatch?)');
  }
  return base.consume;
}

/**
 * A simulcast producer sent down one pipe as one stream per spatial layer (a simulcast
 * consumer held at that layer, falling back to the nearest one when it is missing), so that
 * the layers nobody below wants can be paused one by one. The child produces one simulcast
 * producer from `rtpParameters` (one encoding per layer), whose viewers then switch between
 * layers as they would at the origin.
 */
export class LayeredPipeConsumer {
  readonly consumers: types.Consumer[];
  readonly rtpParameters: types.RtpParameters;
  #max: number;
  /** Nothing sent yet, the lowest layer included (see release()). */
  #held: boolean;
  #closed = false;

  static async create(
    pipe: types.PipeTransport,
    router: types.Router,
    options: { producerId: string; layers: number; maxSpatialLayer: number; hold?: boolean },
  ): Promise<LayeredPipeConsumer> {
    const consume = genericConsume(pipe);
    const rtpCapabilities = pipeLayerCapabilities(router.rtpCapabilities);
    const consumers: types.Consumer[] = [];
    try {
      for (let layer = 0; layer < options.layers; layer++) {
        consumers.push(
          await consume.call(pipe, {
            producerId: options.producerId,
            rtpCapabilities,
            // The lowest layer always flows (a child's new viewer starts on it at once), unless held.
            paused: options.hold === true || (layer > 0 && layer > options.maxSpatialLayer),
            preferredLayers: { spatialLayer: layer },
            appData: { layer },
          }),
        );
      }
    } catch (err) {
      for (const c of consumers) c.close();
      throw err;
    }
    return new LayeredPipeConsumer(consumers, options.maxSpatialLayer, options.hold === true);
  }

  private constructor(consumers: types.Consumer[], max: number, held: boolean) {
    this.consumers = consumers;
    this.#max = max;
    this.#held = held;
    const first = consumers[0]!.rtpParameters;
    const temporal = temporalLayers(first.encodings?.[0]);
    this.rtpParameters = {
      codecs: first.codecs,
      headerExtensions: first.headerExtensions ?? [],
      encodings: consumers.map((c) => {
        const e = c.rtpParameters.encodings![0]!;
        return { ssrc: e.ssrc!, ...(e.rtx ? { rtx: { ssrc: e.rtx.ssrc } } : {}), scalabilityMode: `L1T${temporal}` };
      }),
      ...(first.rtcp ? { rtcp: first.rtcp } : {}),
    };
    // One consumer gone (producer closed, pipe closed) ends them all.
    for (const c of consumers) c.observer.once('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  get maxSpatialLayer(): number {
    return this.#max;
  }

  get held(): boolean {
    return this.#held;
  }

  /** Start sending (a pipe created with `hold`): the lowest layer and those up to the max. */
  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await this.setMax(this.#max);
  }

  /** Send layers up to `max` (and always the lowest); pause the others. Nothing is sent while held. */
  async setMax(max: number): Promise<void> {
    this.#max = max;
    if (this.#held) return;
    await Promise.all(
      this.consumers.map(async (c, layer) => {
        if (c.closed) return;
        try {
          if ((layer === 0 || layer <= max) && c.paused) await c.resume();
          else if (layer > max && !c.paused) await c.pause();
        } catch {
          // closed meanwhile
        }
      }),
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.consumers) c.close();
  }
}
