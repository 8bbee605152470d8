import type { types } from 'mediasoup';
import type { Quality } from '@cascade/protocol';
import type { LocalStream } from '../LocalStream.js';
import type { Session } from '../Session.js';
import { layerCount, maxLayerFor, temporalLayers } from './quality.js';

export interface ViewerLayersOptions {
  /** Quality changes are applied at most once per this period (ms); the last one asked for wins. Default 250. */
  minIntervalMs?: number;
  /** A viewer held below full frame rate on a higher layer this long (ms) is moved down a layer. Default 4000. */
  frameRateGraceMs?: number;
  /** How long such a viewer stays down before trying the higher layer again (ms); doubles each time, up to 5 min. Default 20000. */
  retryAfterMs?: number;
}

interface Video {
  consumer: types.Consumer;
  /** Spatial and temporal layers of the stream. */
  layers: number;
  temporal: number;
  started: boolean;
  current: types.ConsumerLayers | undefined;
  /** Highest spatial layer allowed for now by the frame-rate rule (undefined: no cap). */
  cap: number | undefined;
  retryMs: number;
  lowTimer?: ReturnType<typeof setTimeout>;
  capTimer?: ReturnType<typeof setTimeout>;
}

export interface ViewerLayersHooks {
  /** Create a consumer for the stream's current video source and announce it (`consumer.new`). */
  addVideo(): Promise<void>;
  /** Close the viewer's video consumers and announce it (`consumer.closed`). */
  removeVideo(): void;
}

/**
 * One viewer's video layers on this node. Its video consumer starts on the lowest layer (a
 * small key frame, asked for and sent fastest: the first picture comes quickly, on a join as
 * after a failover) and is raised to what the viewer's quality allows once that first picture
 * went out; from there mediasoup moves it between the allowed layers as the viewer's
 * bandwidth estimate says. mediasoup would rather send a higher layer at a fraction of its
 * frame rate than a lower one whole; a viewer whose link holds it there for a while is moved
 * down a layer (a full-rate picture, not a stuttering one) and tries again later. 'audio'
 * closes the video consumer. The viewer hears of every layer
 * change (`consumer.layers`), and its quality counts in the stream's layer demand.
 */
export class ViewerLayers {
  readonly #session: Session;
  readonly #stream: LocalStream;
  readonly #hooks: ViewerLayersHooks;
  readonly #minIntervalMs: number;
  readonly #frameRateGraceMs: number;
  readonly #retryAfterMs: number;
  #quality: Quality = 'auto';
  #desired: Quality = 'auto';
  #appliedAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #video: Video | undefined;
  #closed = false;

  constructor(session: Session, stream: LocalStream, hooks: ViewerLayersHooks, options: ViewerLayersOptions = {}) {
    this.#session = session;
    this.#stream = stream;
    this.#hooks = hooks;
    this.#minIntervalMs = options.minIntervalMs ?? 250;
    this.#frameRateGraceMs = options.frameRateGraceMs ?? 4000;
    this.#retryAfterMs = options.retryAfterMs ?? 20_000;
    stream.layers.setViewer(session.id, this.#quality);
  }

  /** The quality in force (a newer one asked for may be waiting for its turn). */
  get quality(): Quality {
    return this.#quality;
  }

  /** Whether video consumers are wanted now (not in 'audio'). */
  get wantsVideo(): boolean {
    return this.#quality !== 'audio';
  }

  /** The quality asked for with the subscription: in force at once, before any consumer exists. */
  init(quality: Quality): void {
    this.#desired = this.#quality = quality;
    this.#stream.layers.setViewer(this.#session.id, quality);
  }

  /** Options for a new consumer of `producer`: a simulcast video starts on its lowest layer. */
  consumeOptions(producer: types.Producer): { preferredLayers?: types.ConsumerLayers } {
    return layerCount(producer) > 1 ? { preferredLayers: { spatialLayer: 0 } } : {};
  }

  /** Follow a new video consumer: report its layers, raise it once its first picture went out. */
  adopt(consumer: types.Consumer, producer: types.Producer): void {
    if (consumer.kind !== 'video' || this.#closed) return;
    const video: Video = {
      consumer,
      layers: layerCount(producer),
      temporal: temporalLayers(consumer.rtpParameters.encodings?.[0]),
      started: false,
      current: undefined,
      cap: undefined,
      retryMs: this.#retryAfterMs,
    };
    this.#drop(this.#video);
    this.#video = video;
    consumer.on('layerschange', (layers) => {
      if (this.#closed) return;
      video.current = layers;
      this.#session.notify('consumer.layers', {
        consumerId: consumer.id,
        spatialLayer: layers?.spatialLayer ?? null,
        temporalLayer: layers?.temporalLayer ?? null,
        layers: video.layers,
      });
      if (layers && !video.started) {
        video.started = true;
        void this.#raise(video);
      }
      this.#checkFrameRate(video);
    });
    consumer.observer.once('close', () => {
      if (this.#video === video) this.#drop(video);
    });
  }

  /** Ask for another quality; applied now, or at the end of the current period (the last one asked wins). */
  set(quality: Quality): { quality: Quality; layers: number } {
    this.#desired = quality;
    const wait = this.#appliedAt + this.#minIntervalMs - Date.now();
    if (wait <= 0) this.#apply();
    else this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#apply();
    }, wait);
    return { quality, layers: this.#stream.videoLayers };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#stream.layers.setViewer(this.#session.id, undefined);
    this.#drop(this.#video);
  }

  #apply(): void {
    if (this.#closed) return;
    this.#appliedAt = Date.now();
    const was = this.#quality;
    const quality = (this.#quality = this.#desired);
    if (quality === was) return;
    this.#stream.layers.setViewer(this.#session.id, quality);
    this.#session.log.debug({ from: was, to: quality }, 'viewer quality');
    if (quality === 'audio') {
      this.#hooks.removeVideo();
      return;
    }
    if (was === 'audio') {
      void this.#hooks.addVideo().catch((err: unknown) => this.#session.log.warn({ err }, 'cannot resume video'));
      return;
    }
    const video = this.#video;
    if (!video) return;
    // A choice of the viewer's starts afresh: no cap from how the previous one went.
    clearTimeout(video.capTimer);
    video.cap = undefined;
    video.retryMs = this.#retryAfterMs;
    // Before its first picture the consumer stays on the lowest layer; #raise then uses this quality.
    if (video.started) void this.#raise(video);
  }

  /** Stop following a video consumer (closed, replaced, or the viewer left). */
  #drop(video: Video | undefined): void {
    if (!video) return;
    clearTimeout(video.lowTimer);
    clearTimeout(video.capTimer);
    if (this.#video === video) this.#video = undefined;
  }

  /**
   * Held on a higher layer below its full frame rate (by its bandwidth estimate) for
   * frameRateGraceMs: cap the viewer one layer down, and lift the cap after retryMs (doubling
   * each time it comes back, so a link that cannot carry the layer is not tried every few seconds).
   */
  #checkFrameRate(video: Video): void {
    const l = video.current;
    const low = !!l && l.spatialLayer > 0 && (l.temporalLayer ?? video.temporal - 1) < video.temporal - 1;
    if (!low) {
      clearTimeout(video.lowTimer);
      video.lowTimer = undefined;
      return;
    }
    video.lowTimer ??= setTimeout(() => {
      video.lowTimer = undefined;
      const now = video.current;
      if (this.#video !== video || !now || now.spatialLayer === 0 || (now.temporalLayer ?? 0) >= video.temporal - 1) return;
      video.cap = now.spatialLayer - 1;
      this.#session.log.debug({ spatialLayer: video.cap, retryMs: video.retryMs }, 'viewer below full frame rate: one layer down');
      void this.#raise(video);
      clearTimeout(video.capTimer);
      video.capTimer = setTimeout(() => {
        if (this.#video !== video) return;
        video.cap = undefined;
        video.retryMs = Math.min(video.retryMs * 2, 300_000);
        void this.#raise(video);
      }, video.retryMs);
      video.capTimer.unref?.();
    }, this.#frameRateGraceMs);
    video.lowTimer.unref?.();
  }

  async #raise(video: Video): Promise<void> {
    const wanted = maxLayerFor(this.#quality, video.layers);
    if (wanted === undefined || video.consumer.closed || video.layers < 2) return;
    const spatialLayer = Math.min(wanted, video.cap ?? wanted);
    if (video.consumer.preferredLayers?.spatialLayer === spatialLayer) return;
    try {
      await video.consumer.setPreferredLayers({ spatialLayer });
    } catch {
      // the consumer closed meanwhile
    }
  }
}
