import { MAX_LAYERS, maxLayerFor, type Quality } from '@cascade/protocol';

export type { Quality };

/** Every quality a viewer may ask for (see WatchOptions.quality). */
export const QUALITIES: readonly Quality[] = ['auto', 'high', 'medium', 'low', 'audio'];

export function isQuality(value: unknown): value is Quality {
  return typeof value === 'string' && (QUALITIES as readonly string[]).includes(value);
}

/** What a viewer asked for and what it receives right now (CascadeEvent.Quality). */
export interface QualityInfo {
  /** The quality asked for (WatchOptions.quality, then setQuality()). */
  quality: Quality;
  /** The spatial layer received now, 0 the lowest; null when no video arrives (audio only, before the first picture, or no video at all). */
  spatialLayer: number | null;
  /** The temporal layer (frame rate step) received, or null. */
  temporalLayer: number | null;
  /** Spatial layers the stream has (1 without simulcast); 0 while unknown. */
  layers: number;
}

/** One simulcast layer a broadcaster sends. */
export interface SimulcastLayer {
  /** The camera's resolution divided by this (1: full size, 4: a quarter of the width and height). */
  scaleResolutionDownBy: number;
  /** bps. */
  maxBitrate: number;
  /** Frames per second at most; default: the camera's. */
  maxFramerate?: number;
}

/**
 * Three layers, lowest first: a quarter, half and full size of the camera (180p, 360p and 720p
 * from a 720p camera) at 150, 500 and 1500 kbit/s. The lowest is small enough for a phone on a
 * poor link and starts a picture fastest; the highest is what a good link gets.
 */
export const DEFAULT_SIMULCAST: readonly SimulcastLayer[] = [
  { scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/** RTCRtpEncodingParameters for the broadcaster's video: the layers, lowest first; TypeError on impossible ones. */
export function videoEncodings(simulcast: readonly SimulcastLayer[] | false | undefined, maxBitrate: number, codec: 'vp8' | 'h264'): RTCRtpEncodingParameters[] {
  if (simulcast === false) return [{ maxBitrate }];
  const layers = simulcast ?? DEFAULT_SIMULCAST;
  if (!Array.isArray(layers) || layers.length < 1 || layers.length > MAX_LAYERS) throw new TypeError(`simulcast: 1 to ${MAX_LAYERS} layers`);
  return layers.map((l, i) => {
    if (!(l.scaleResolutionDownBy >= 1) || !(l.maxBitrate > 0)) throw new TypeError(`simulcast layer ${i}: scaleResolutionDownBy >= 1 and maxBitrate > 0`);
    return {
      scaleResolutionDownBy: l.scaleResolutionDownBy,
      maxBitrate: l.maxBitrate,
      ...(l.maxFramerate ? { maxFramerate: l.maxFramerate } : {}),
      // Temporal layers let a viewer's link drop to a lower frame rate before a lower resolution (VP8 only in browsers).
      ...(codec === 'vp8' && layers.length > 1 ? { scalabilityMode: 'L1T3' } : {}),
    } as RTCRtpEncodingParameters;
  });
}

/**
 * Sends a viewer's quality changes to its node at most once per `minIntervalMs`, the latest
 * one winning, so that a page flipping the quality a hundred times a second costs a few
 * requests, never a session closed for flooding.
 */
export class QualitySender {
  readonly #send: (quality: Quality) => Promise<void>;
  readonly #minIntervalMs: number;
  #wanted: Quality | undefined;
  #sent: Quality | undefined;
  #busy = false;
  #lastAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(send: (quality: Quality) => Promise<void>, options: { minIntervalMs?: number } = {}) {
    this.#send = send;
    this.#minIntervalMs = options.minIntervalMs ?? 250;
  }

  /** The node already has this quality (it came with the subscription). */
  reset(quality: Quality): void {
    this.#sent = quality;
    this.#wanted = undefined;
  }

  request(quality: Quality): void {
    if (this.#closed) return;
    this.#wanted = quality;
    this.#pump();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #pump(): void {
    if (this.#busy || this.#timer || this.#closed || this.#wanted === undefined) return;
    if (this.#wanted === this.#sent) {
      this.#wanted = undefined;
      return;
    }
    const wait = this.#lastAt + this.#minIntervalMs - Date.now();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#pump();
      }, wait);
      return;
    }
    const quality = this.#wanted;
    this.#wanted = undefined;
    this.#busy = true;
    this.#lastAt = Date.now();
    this.#send(quality)
      .then(() => (this.#sent = quality))
      .catch(() => {
        // The node went away meanwhile: the next node gets the quality with its subscription.
      })
      .finally(() => {
        this.#busy = false;
        this.#pump();
      });
  }
}

/**
 * The quality to ask a node for: the viewer's, lowered until it allows no layer above `top` (the
 * highest the origin gets now) on a video of `layers` spatial layers.
 */
export function cappedQuality(quality: Quality, top: number | undefined, layers: number): Quality {
  if (top === undefined || layers <= 1 || quality === 'audio') return quality;
  let q = quality;
  while (q !== 'low' && (maxLayerFor(q, layers) ?? 0) > top) q = q === 'medium' ? 'low' : 'medium';
  return q;
}

/** What WatchQuality needs of a connection (a ViewerConnection). */
export interface QualityConnection {
  readonly quality: Quality;
  setQuality(quality: Quality): Promise<void>;
  on(event: 'layers', listener: (l: { spatialLayer: number | null; temporalLayer: number | null; layers: number }) => void): unknown;
  on(event: 'consumerclosed', listener: (c: { kind: string; track: MediaStreamTrack }) => void): unknown;
  on(event: 'originlayers', listener: (top: number | undefined) => void): unknown;
}

/**
 * A Watch's quality: what the viewer asked for (kept across failovers: each new node gets it
 * with the subscription), what arrives (from the node's layer notifications), and the video
 * track taken out of the MediaStream when the viewer chooses audio only.
 */
export class WatchQuality {
  readonly #emit: (info: QualityInfo) => void;
  readonly #sender: QualitySender;
  #conn: QualityConnection | undefined;
  #info: QualityInfo;
  /** The highest layer the origin gets now, as the connection's verified batches say (undefined: no cap). */
  #originTop: number | undefined;

  constructor(quality: Quality | undefined, emit: (info: QualityInfo) => void) {
    if (quality !== undefined && !isQuality(quality)) throw new TypeError(`quality: one of ${QUALITIES.join(', ')}`);
    this.#info = { quality: quality ?? 'auto', spatialLayer: null, temporalLayer: null, layers: 0 };
    this.#emit = emit;
    this.#sender = new QualitySender((q) => this.#conn?.setQuality(q) ?? Promise.resolve());
  }

  get info(): QualityInfo {
    return { ...this.#info };
  }

  get quality(): Quality {
    return this.#info.quality;
  }

  set(quality: Quality): void {
    if (!isQuality(quality)) throw new TypeError(`quality: one of ${QUALITIES.join(', ')}`);
    if (quality === this.#info.quality) return;
    this.#info = { ...this.#info, quality, ...(quality === 'audio' ? { spatialLayer: null, temporalLayer: null } : {}) };
    this.#sender.request(this.#asked());
    this.#emit(this.info);
  }

  /** A new connection serves the viewer: it subscribed with `conn.quality`; send the current one if that changed since. */
  adopt(conn: QualityConnection, mediaStream: MediaStream): void {
    this.#conn = conn;
    this.#originTop = undefined;
    this.#sender.reset(conn.quality);
    if (conn.quality !== this.#info.quality) this.#sender.request(this.#info.quality);
    // The broadcaster stopped sending its top layers (its browser does when its uplink dips) or
    // sends them again: ask for no more than the origin has. Left to itself, mediasoup moves a
    // consumer off a layer only after 1.5 s without its packets, the picture frozen meanwhile.
    // What the viewer chose (info.quality) stays as it is.
    conn.on('originlayers', (top) => {
      if (this.#conn !== conn) return;
      this.#originTop = top;
      this.#sender.request(this.#asked());
    });
    conn.on('layers', (l) => {
      if (this.#conn !== conn) return;
      const next = { ...this.#info, spatialLayer: l.spatialLayer, temporalLayer: l.temporalLayer, layers: l.layers };
      if (next.spatialLayer === this.#info.spatialLayer && next.temporalLayer === this.#info.temporalLayer && next.layers === this.#info.layers) return;
      const layersKnown = next.layers !== this.#info.layers;
      this.#info = next;
      if (layersKnown) this.#sender.request(this.#asked());
      this.#emit(this.info);
    });
    // Audio only: the node closed the video consumer, so its track leaves the MediaStream. (A
    // consumer closed because its source was replaced keeps its track until the new one arrives.)
    conn.on('consumerclosed', (c) => {
      if (this.#conn !== conn || this.#info.quality !== 'audio' || c.kind !== 'video') return;
      if (mediaStream.getTracks().includes(c.track)) mediaStream.removeTrack(c.track);
    });
  }

  close(): void {
    this.#sender.close();
    this.#conn = undefined;
  }

  /** What to ask the node for: the viewer's choice, within what the origin has. */
  #asked(): Quality {
    return cappedQuality(this.#info.quality, this.#originTop, this.#info.layers);
  }
}
