import { createHash } from 'node:crypto';
import type { types } from 'mediasoup';
import {
  DIGEST_BYTES,
  TypedEmitter,
  digestKey,
  encodeBatchBody,
  FRAME_TAG_AUDIO,
  FRAME_TAG_VIDEO,
  FRAME_TAG_VIDEO_UNKNOWN,
  signedBatch,
  type AssembledFrame,
  type Logger,
} from '@cascade/protocol';
import type { LocalStream } from '../LocalStream.js';
import type { IntegrityChannel } from './IntegrityChannel.js';
import type { StreamKey } from './StreamKey.js';
import { tapFrames } from './frameTap.js';

export interface StreamDigesterOptions {
  /** One signed batch per period (ms). */
  intervalMs: number;
  /** How long the digests of frames sent are kept for the probe to compare with (ms). */
  memoryMs: number;
}

export type StreamDigesterObserverEvents = {
  /** A batch went out: its size in bytes, the digests it carried. */
  batch: [bytes: number, digests: number];
  close: [];
  listenererror: [event: string, error: unknown];
};

/** The SHA-256 of a canonical frame, cut to DIGEST_BYTES. */
export function frameDigest(data: Uint8Array): Uint8Array {
  return createHash('sha256').update(data).digest().subarray(0, DIGEST_BYTES);
}

/**
 * The origin's side of a stream's integrity: every frame of every source the stream gets (from
 * a browser, WHIP, RTP ingest: whatever became a source here), digested as it arrives, and every
 * `intervalMs` a batch of those digests signed with the stream's key and sent on the stream's
 * digest channel, which relays pass on to every viewer. A batch goes out every period even
 * without frames: its age is what tells a viewer that the channel is live.
 */
export class StreamDigester {
  readonly observer = new TypedEmitter<StreamDigesterObserverEvents>();
  readonly #stream: LocalStream;
  readonly #channel: IntegrityChannel;
  readonly #key: StreamKey;
  readonly #options: StreamDigesterOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  #direct: Promise<types.DirectTransport> | undefined;
  #current: Uint8Array[] = [];
  #previous: Uint8Array[] = [];
  /** The layer tag of each digest in #current and #previous (see DigestBatch.layers). */
  #currentTags: number[] = [];
  #previousTags: number[] = [];
  #counts = { video: 0, audio: 0 };
  #seq = 0;
  /** Digests sent lately (key → when the origin had the frame), for the probe. */
  readonly #recent = new Map<string, number>();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #onSource = (p: types.Producer) => void this.#tap(p);
  #closed = false;

  constructor(stream: LocalStream, channel: IntegrityChannel, key: StreamKey, options: StreamDigesterOptions, deps: { logger: Logger; now?: () => number }) {
    this.#stream = stream;
    this.#channel = channel;
    this.#key = key;
    this.#options = options;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.logger.child({ component: 'StreamDigester', streamId: stream.id });
    stream.on('sourceadd', this.#onSource);
    for (const p of stream.sources) void this.#tap(p);
    this.#timer = setInterval(() => this.#flush(), options.intervalMs);
    this.#timer.unref();
    stream.observer.once('close', () => this.close());
  }

  get publicKey(): string {
    return this.#key.publicKey;
  }

  /** When the origin had a frame with this digest (undefined: it never did, or too long ago to say). */
  sentAt(digest: Uint8Array): number | undefined {
    return this.#recent.get(digestKey(digest));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#stream.off('sourceadd', this.#onSource);
    void this.#direct?.then((t) => t.close(), () => {});
    this.#recent.clear();
    this.observer.safeEmit('close');
  }

  async #tap(producer: types.Producer): Promise<void> {
    if (this.#closed || producer.closed) return;
    try {
      const router = await this.#stream.router.primary();
      let direct = await (this.#direct ??= router.createDirectTransport());
      if (direct.closed) direct = await (this.#direct = router.createDirectTransport());
      const consumer = await tapFrames(direct, router, producer, (f, layer) => this.#onFrame(f, layer), this.#now);
      if (this.#closed) consumer.close();
    } catch (err) {
      // The producer went away meanwhile (a broadcaster's quick replacement): nothing of it to digest.
      if (!producer.closed && !this.#closed) this.#log.warn({ err, kind: producer.kind }, 'cannot digest this source');
    }
  }

  #onFrame(frame: AssembledFrame, layer: number | undefined): void {
    if (this.#closed) return;
    const d = frameDigest(frame.data);
    this.#current.push(d);
    const videoTag = layer !== undefined && FRAME_TAG_VIDEO + layer < FRAME_TAG_VIDEO_UNKNOWN ? FRAME_TAG_VIDEO + layer : FRAME_TAG_VIDEO_UNKNOWN;
    this.#currentTags.push(frame.kind === 'audio' ? FRAME_TAG_AUDIO : videoTag);
    this.#counts[frame.kind]++;
    const k = digestKey(d);
    // Re-inserted, so that the map stays in time order (identical frames recur: silence).
    this.#recent.delete(k);
    this.#recent.set(k, this.#now());
  }

  #flush(): void {
    if (this.#closed) return;
    const now = this.#now();
    const body = encodeBatchBody({
      streamId: this.#stream.id,
      seq: ++this.#seq,
      originTime: now,
      intervalMs: this.#options.intervalMs,
      videoFrames: this.#counts.video,
      audioFrames: this.#counts.audio,
      digests: [...this.#current, ...this.#previous],
      layers: Uint8Array.from([...this.#currentTags, ...this.#previousTags]),
    });
    const message = signedBatch(body, this.#key.sign(body));
    const digests = this.#current.length + this.#previous.length;
    this.#previous = this.#current;
    this.#current = [];
    this.#previousTags = this.#currentTags;
    this.#currentTags = [];
    this.#counts = { video: 0, audio: 0 };
    void this.#channel.send(message);
    this.observer.safeEmit('batch', message.length, digests);
    for (const [k, at] of this.#recent) {
      if (now - at <= this.#options.memoryMs) break;
      this.#recent.delete(k);
    }
  }
}
