import type { types } from 'mediasoup';
import type { Quality } from '@cascade/protocol';
import type { LocalStream } from '../LocalStream.js';
import type { Session } from '../Session.js';
import { LayerGuard, type LayerGuardOptions } from './LayerGuard.js';
import { layerCount, maxLayerFor, temporalLayers } from './quality.js';

export interface ViewerLayersOptions extends LayerGuardOptions {
  /** Quality changes are applied at most once per this period (ms); the last one asked for wins. Default 250. */
  minIntervalMs?: number;
}

/**
 * The first raise waits this long after the first picture went out (ms). Its higher layer's key
 * frame is asked of the broadcaster, and Chrome ignores a key frame request that comes within
 * 300 ms of the previous one it acted on (libwebrtc's minimum key frame interval, all layers
 * together): here the join's own, sent a few tens of ms before that first picture. mediasoup
 * repeats an unanswered request only after a second. Raised at once, the step-up waited that
 * second (traced at the origin: the join's PLI, the step-up's 264 ms later, its repeat 1.0 s
 * after that), and the repeat pushed the next join's request into the same wait (joins at the
 * origin took 1.2 s to a first frame instead of 0.2 s).
 */
const RAISE_AFTER_FIRST_PICTURE_MS = 350;

/**
 * ... and is put off while other viewers here are setting up their video, by this much once they
 * are done, RAISE_PUT_OFF_FOR_MS in all at most. Their first key frames (the lowest layer's) are
 * on their way: a raise asks for a higher layer's, and Chrome ignores the lowest layer's request
 * if it comes within 300 ms of the raise's key frame (mediasoup asks again a second later).
 * Traced in the freeze benchmark: viewers of a frozen relay arriving in two groups half a second
 * apart, the first group's raise at the second group's arrival, the second group's first picture
 * 1.0 s after its resume, 1.9 s after the freeze.
 */
const RAISE_PUT_OFF_FOR_MS = 1500;
const RAISE_QUIET_CHECK_MS = 50;
/**
 * A resumed video consumer with no picture yet asks for a key frame again this often (ms), within
 * FIRST_LAYER_NUDGE_FOR_MS: a request Chrome ignored (within 300 ms of its previous key frame,
 * all layers together) is otherwise repeated by mediasoup only after a second. Throttled per
 * layer at the origin like any request.
 */
const FIRST_KEY_FRAME_AGAIN_MS = 400;

/** While a resumed video consumer has no layer: how often its preferred layers are toggled, and for how long at most (ms; see resumed()). */
const FIRST_LAYER_NUDGE_MS = 100;
const FIRST_LAYER_NUDGE_FOR_MS = 4000;

interface Video {
  consumer: types.Consumer;
  /** Spatial layers of the stream. */
  layers: number;
  started: boolean;
  /** The first raise, waiting for RAISE_AFTER_FIRST_PICTURE_MS. */
  raiseTimer?: ReturnType<typeof setTimeout>;
  /** When to hold it below what its bandwidth estimate allows. */
  guard: LayerGuard;
  /** The next toggle of its preferred layers while it waits for a first layer (see resumed()). */
  nudgeTimer?: ReturnType<typeof setTimeout>;
  /** The next key frame request while it waits for a first picture (see resumed()). */
  askTimer?: ReturnType<typeof setTimeout>;
}

/**
 * Whether a bandwidth estimate manages a consumer with these parameters (browsers: transport-cc,
 * or REMB; mediasoup then chooses its layers from the transport's estimate). Such a consumer
 * gets no layer of a source that has carried no packet yet (mediasoup 3.12, see resumed()), so
 * it cannot take a new source's first key frame and takes the next one.
 */
export function bandwidthManaged(rtpParameters: types.RtpParameters): boolean {
  return rtpParameters.codecs.some((c) => c.rtcpFeedback?.some((fb) => fb.type === 'transport-cc' || fb.type === 'goog-remb') ?? false);
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
 * went out (RAISE_AFTER_FIRST_PICTURE_MS later); from there mediasoup moves it between the allowed layers as the viewer's
 * bandwidth estimate says, below what LayerGuard holds it under for its frame rate or its
 * losses. 'audio' closes the video consumer. The viewer hears of every layer
 * change (`consumer.layers`), and its quality counts in the stream's layer demand.
 */
export class ViewerLayers {
  readonly #session: Session;
  readonly #stream: LocalStream;
  readonly #hooks: ViewerLayersHooks;
  readonly #minIntervalMs: number;
  readonly #guardOptions: LayerGuardOptions;
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
    this.#guardOptions = options;
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
      started: false,
      guard: new LayerGuard(temporalLayers(consumer.rtpParameters.encodings?.[0]), () => void this.#raise(video), this.#guardOptions),
    };
    this.#drop(this.#video);
    this.#video = video;
    consumer.on('layerschange', (layers) => {
      if (this.#closed) return;
      this.#session.notify('consumer.layers', {
        consumerId: consumer.id,
        spatialLayer: layers?.spatialLayer ?? null,
        temporalLayer: layers?.temporalLayer ?? null,
        layers: video.layers,
      });
      if (layers && !video.started) {
        video.started = true;
        clearTimeout(video.askTimer);
        this.#raiseWhenQuiet(video, Date.now() + RAISE_PUT_OFF_FOR_MS, RAISE_AFTER_FIRST_PICTURE_MS);
      }
      video.guard.layers(layers);
    });
    consumer.on('score', ({ score }) => video.guard.score(score));
    consumer.observer.once('close', () => {
      if (this.#video === video) this.#drop(video);
    });
  }

  /**
   * The viewer resumed `consumer`: get its first layer chosen as soon as there is one to choose.
   * mediasoup 3.12 chooses a simulcast consumer's layer on resume only when no bandwidth estimate
   * manages its bitrate. With one (browsers, transport-cc), the transport shares its bitrate out
   * on its own events only (connected, a source's score changing, its next estimate), and gives
   * no layer whose source has no measured bitrate yet: a relay's new source (a parent replaced)
   * carries nothing until the next key frame. Traced on a relay: Chromium viewers had no layer
   * 1.0 to 2.3 s after their resume while werift viewers had theirs at the first key frame.
   * A change of preferred layers makes mediasoup share the bitrate out now, so the consumer's
   * preferred temporal layer is toggled every FIRST_LAYER_NUDGE_MS until its first layer comes
   * (or FIRST_LAYER_NUDGE_FOR_MS passed), then put back.
   */
  resumed(consumer: types.Consumer): void {
    const video = this.#video;
    if (this.#closed || video?.consumer !== consumer || video.started || consumer.type !== 'simulcast' || consumer.closed) return;
    const spatialLayer = consumer.preferredLayers?.spatialLayer ?? 0;
    const until = Date.now() + FIRST_LAYER_NUDGE_FOR_MS;
    // Only while the preferred layers are still the ones it started with (or our toggle of them).
    const ours = () => consumer.preferredLayers === undefined || consumer.preferredLayers.spatialLayer === spatialLayer;
    let low = false;
    const nudge = async (): Promise<void> => {
      video.nudgeTimer = undefined;
      if (this.#closed || this.#video !== video || consumer.closed || !ours()) return;
      const done = video.started || Date.now() >= until;
      if (done && !low) return;
      low = !done && !low;
      try {
        await consumer.setPreferredLayers(low ? { spatialLayer, temporalLayer: 0 } : { spatialLayer });
      } catch {
        return; // the consumer closed meanwhile
      }
      if (this.#video === video) video.nudgeTimer = setTimeout(() => void nudge(), FIRST_LAYER_NUDGE_MS);
    };
    void nudge();
    const ask = (): void => {
      video.askTimer = undefined;
      if (this.#closed || this.#video !== video || consumer.closed || video.started || Date.now() >= until) return;
      consumer.requestKeyFrame().catch(() => {});
      video.askTimer = setTimeout(ask, FIRST_KEY_FRAME_AGAIN_MS);
    };
    video.askTimer = setTimeout(ask, FIRST_KEY_FRAME_AGAIN_MS);
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
    video.guard.reset();
    // Before its first picture the consumer stays on the lowest layer; #raise then uses this quality.
    if (video.started) void this.#raise(video);
  }

  /** Stop following a video consumer (closed, replaced, or the viewer left). */
  #drop(video: Video | undefined): void {
    if (!video) return;
    clearTimeout(video.raiseTimer);
    clearTimeout(video.nudgeTimer);
    clearTimeout(video.askTimer);
    video.guard.close();
    if (this.#video === video) this.#video = undefined;
  }

  /** The first raise: `afterMs` from now, put off while other viewers here set up (see RAISE_PUT_OFF_FOR_MS). */
  #raiseWhenQuiet(video: Video, deadline: number, afterMs: number, putOff = false): void {
    video.raiseTimer = setTimeout(() => {
      if (this.#closed || this.#video !== video) return;
      const late = Date.now() >= deadline;
      if (!late && this.#stream.viewersSettingUp > 0) return this.#raiseWhenQuiet(video, deadline, RAISE_QUIET_CHECK_MS, true);
      // Quiet now, after a wait: the newcomers' first key frames are just being sent.
      if (!late && putOff) return this.#raiseWhenQuiet(video, deadline, Math.min(RAISE_AFTER_FIRST_PICTURE_MS, deadline - Date.now()));
      void this.#raise(video);
    }, afterMs);
  }

  async #raise(video: Video): Promise<void> {
    if (this.#closed) return;
    const wanted = maxLayerFor(this.#quality, video.layers);
    if (wanted === undefined || video.consumer.closed || video.layers < 2) return;
    const spatialLayer = Math.min(wanted, video.guard.cap ?? wanted);
    if (video.consumer.preferredLayers?.spatialLayer === spatialLayer) return;
    try {
      await video.consumer.setPreferredLayers({ spatialLayer });
    } catch {
      // the consumer closed meanwhile
    }
  }
}
