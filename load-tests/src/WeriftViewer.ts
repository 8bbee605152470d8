import { CascadeEvent, Watch, type WatchOptions } from '@cascade/client-sdk';
import type { types as msc } from 'mediasoup-client';
import type { RtpPacket } from 'werift';
import type { ViewerResult } from './LoadTestTypes.js';
import { LayerClock } from './layers.js';
import type { LogHistogram } from './LogHistogram.js';
import { RtpReceiveStats, type RtpInterval } from './RtpReceiveStats.js';

export interface WeriftViewerOptions {
  url: string;
  streamId: string;
  index: number;
  /** Frames carry send-time stamps (our own broadcaster). */
  stamped: boolean;
  freezeGapMs: number;
  /** watch() taking longer than this is a failed join, ms. */
  joinTimeoutMs: number;
  WebSocket: NonNullable<WatchOptions['WebSocket']>;
  MediaStream: NonNullable<WatchOptions['MediaStream']>;
  /** Behind the bandwidth cap (reported). */
  capped?: boolean;
  /** watch({ quality }); default 'auto'. */
  quality?: WatchOptions['quality'];
}

export interface WeriftViewerDeps {
  /** Wall clock, ms. */
  now: () => number;
}

/** `lost`: joined, then the SDK gave up (fatal error, or the stream ended). */
export type ViewerState = 'idle' | 'joining' | 'connected' | 'failed' | 'lost' | 'stopped';

/** werift's remote track: RTP arrives already decrypted, one callback per packet. */
interface WeriftTrack {
  onReceiveRtp: { subscribe(cb: (rtp: RtpPacket) => void): { unSubscribe(): void } };
}

/**
 * One simulated viewer: joins through the SDK's normal viewer flow (redirects included) with
 * werift underneath, and accounts the video RTP it receives without decoding it.
 */
export class WeriftViewer {
  readonly index: number;
  readonly #options: WeriftViewerOptions;
  readonly #now: () => number;
  readonly #stats: RtpReceiveStats;
  readonly #layers = new LayerClock();
  #watch: Watch | undefined;
  #state: ViewerState = 'idle';
  #startedAt = 0;
  #joinedAt: number | null = null;
  #error: { code: string; message: string } | undefined;
  #reconnects = 0;
  #nodeChanges = 0;
  /** Kept here: the Watch forgets its node once stopped. */
  #nodeId: string | null = null;
  #hasVideo = false;
  #hooked = new Map<msc.Consumer, { unSubscribe(): void }>();

  constructor(options: WeriftViewerOptions, deps: WeriftViewerDeps) {
    this.index = options.index;
    this.#options = options;
    this.#now = deps.now;
    this.#stats = new RtpReceiveStats({ stamped: options.stamped, freezeGapMs: options.freezeGapMs });
  }

  get state(): ViewerState {
    return this.#state;
  }

  /** Join; never rejects: a failure is recorded and shows in result(). */
  async join(): Promise<void> {
    if (this.#state !== 'idle') return;
    this.#state = 'joining';
    const o = this.#options;
    const w = new Watch({
      url: o.url,
      streamId: o.streamId,
      WebSocket: o.WebSocket,
      MediaStream: o.MediaStream,
      handlerName: 'Chrome111',
      ...(o.quality ? { quality: o.quality } : {}),
    });
    this.#watch = w;
    w.on(CascadeEvent.Track, (_track, consumer) => this.#hook(consumer));
    w.on(CascadeEvent.Reconnecting, () => this.#reconnects++);
    w.on(CascadeEvent.Quality, (q) => this.#layers.on(q.spatialLayer, q.layers, this.#now()));
    w.on(CascadeEvent.NodeChanged, (nodeId) => {
      // The first one is the initial join, not a change.
      if (this.#nodeId !== null) this.#nodeChanges++;
      this.#nodeId = nodeId;
    });
    w.on(CascadeEvent.Error, (err) => (this.#error ??= { code: err.code, message: err.message }));
    w.on(CascadeEvent.Ended, () => (this.#error ??= { code: 'CASCADE_ERR_STREAM_ENDED', message: 'the stream ended' }));
    w.on(CascadeEvent.Stopped, () => {
      if (this.#state === 'connected') this.#state = 'lost';
    });
    this.#startedAt = this.#now();
    const started = w.start();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), o.joinTimeoutMs)));
    try {
      const outcome = await Promise.race([started, timeout]);
      if (outcome === 'timeout') {
        this.#fail('CASCADE_ERR_LOADTEST_JOIN_TIMEOUT', `watch() did not resolve within ${o.joinTimeoutMs} ms`);
        // Watch.stop() during start() would leave the late connection open: stop once it settles.
        started.then(
          () => w.stop(),
          () => {},
        );
        return;
      }
      if ((this.#state as ViewerState) === 'stopped') {
        w.stop();
        return;
      }
      this.#joinedAt = this.#now();
      this.#state = 'connected';
    } catch (err) {
      const e = err as { code?: string; message?: string };
      this.#fail(e.code ?? 'CASCADE_ERR_INTERNAL', e.message ?? String(err));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Counters since the previous call (see RtpReceiveStats.takeInterval). */
  takeInterval(delaySink: LogHistogram): RtpInterval {
    return this.#stats.takeInterval(delaySink);
  }

  get delayHistogram(): LogHistogram {
    return this.#stats.delayHistogram;
  }

  /** Leave; idempotent. */
  stop(): void {
    if (this.#state === 'stopped') return;
    const wasJoining = this.#state === 'joining';
    this.#state = 'stopped';
    for (const sub of this.#hooked.values()) sub.unSubscribe();
    this.#hooked.clear();
    // A join still in flight is stopped by join() once it settles (see there).
    if (!wasJoining) this.#watch?.stop();
    this.#stats.finish(this.#now());
  }

  result(process: number): ViewerResult {
    const rtp = this.#hasVideo ? this.#stats.summary() : null;
    const since = (t: number | null | undefined) => (t !== null && t !== undefined && this.#startedAt ? t - this.#startedAt : null);
    const error = this.#error ?? (this.#startedAt ? undefined : { code: 'CASCADE_ERR_LOADTEST_NOT_STARTED', message: 'the test ended before this viewer was due' });
    return {
      index: this.index,
      process,
      nodeId: this.#nodeId,
      ok: this.#joinedAt !== null && !error,
      ...(error ? { error } : {}),
      startedAt: this.#startedAt,
      joinMs: since(this.#joinedAt),
      firstPacketMs: since(rtp?.firstPacketAt),
      firstFrameMs: since(rtp?.firstFrameAt),
      reconnects: this.#reconnects,
      nodeChanges: this.#nodeChanges,
      rtp,
      ...(this.#options.capped ? { capped: true } : {}),
      layers: this.#layers.result(this.#now()),
    };
  }

  #hook(consumer: msc.Consumer): void {
    if (consumer.kind !== 'video' || this.#hooked.has(consumer) || this.#state === 'stopped') return;
    this.#hasVideo = true;
    const track = consumer.track as unknown as WeriftTrack;
    const sub = track.onReceiveRtp.subscribe((rtp) => {
      const h = rtp.header;
      this.#stats.onPacket(
        { ssrc: h.ssrc, sequenceNumber: h.sequenceNumber, timestamp: h.timestamp, marker: h.marker, bytes: rtp.serializeSize },
        this.#now(),
      );
    });
    this.#hooked.set(consumer, sub);
    consumer.observer.once('close', () => {
      this.#hooked.get(consumer)?.unSubscribe();
      this.#hooked.delete(consumer);
    });
  }

  #fail(code: string, message: string): void {
    this.#error ??= { code, message };
    if (this.#state === 'joining') this.#state = 'failed';
  }
}
