import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DecoderResult, DecoderSample } from './LoadTestTypes.js';
import { LogHistogram } from './LogHistogram.js';

export interface DecodingViewersOptions {
  url: string;
  streamId: string;
  count: number;
  /** Frames carry send-time stamps: measure stamp → frame presented. */
  stamped: boolean;
  /** These decoders sit behind the bandwidth cap (their browser runs in the capped namespace; marked in the results). */
  capped?: boolean;
  /** Index of the first decoder (two groups number on). Default 0. */
  firstIndex?: number;
}

export interface DecodingViewersDeps {
  now: () => number;
  /** Seconds since the test started, for sample times. */
  elapsedSec: () => number;
}

interface Decoder {
  index: number;
  context: BrowserContext | undefined;
  page: Page | undefined;
  startedAt: number;
  joinMs: number | null;
  firstFrameMs: number | null;
  nodeId: string | null;
  error: string | undefined;
  samples: DecoderSample[];
  delay: LogHistogram;
}

/** What one poll reads from a page. */
interface PagePoll {
  stats: Omit<DecoderSample, 't'> | null;
  delays: number[];
  firstFrameAt: number | null;
  nodeId: string | null;
  error: string | null;
}

const JOIN_TIMEOUT_MS = 30_000;
const POLL_TIMEOUT_MS = 3_000;
/** Delays a page buffers between two polls, at most (30 fps × 1 s, with room). */
const PAGE_DELAY_BUFFER = 600;

/**
 * Runs before the page's own scripts: counts painted frames with requestVideoFrameCallback,
 * whose metadata carries the RTP timestamp of WebRTC frames. With a stamped stream the
 * delay is the presentation wall-clock time minus the stamp (same machine, same clock).
 */
function pageInit(args: { stamped: boolean; maxDelays: number }): void {
  type Md = { rtpTimestamp?: number; presentationTime: number };
  type V = HTMLVideoElement & { requestVideoFrameCallback(cb: (now: number, md: Md) => void): number };
  const st = { firstFrameAt: null as number | null, delays: [] as number[] };
  (window as unknown as { __cascadeLoadTest: typeof st }).__cascadeLoadTest = st;
  const hook = () => {
    const video = document.querySelector('video') as V | null;
    if (!video || typeof video.requestVideoFrameCallback !== 'function') return;
    const onFrame = (_now: number, md: Md) => {
      const wall = performance.timeOrigin + md.presentationTime;
      st.firstFrameAt ??= wall;
      if (args.stamped && md.rtpTimestamp !== undefined && st.delays.length < args.maxDelays) {
        const d = (((Math.round(wall * 90) >>> 0) - md.rtpTimestamp) | 0) / 90;
        if (Math.abs(d) < 60_000) st.delays.push(Math.max(0, d));
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', hook, { once: true });
  else hook();
}

/** In the page: inbound-rtp video stats of the watch, plus the frames painted since the last poll. */
async function pagePoll(): Promise<PagePoll> {
  type W = { consumers: { kind: string; getStats(): Promise<RTCStatsReport> }[] };
  const w = (window as unknown as { cascadeWatch?: W }).cascadeWatch;
  const demo = (window as unknown as { cascadeDemo?: { nodeId?: string; error?: { code: string } } }).cascadeDemo;
  const st = (window as unknown as { __cascadeLoadTest?: { firstFrameAt: number | null; delays: number[] } }).__cascadeLoadTest;
  const delays = st ? st.delays.splice(0) : [];
  let stats: PagePoll['stats'] = null;
  const consumer = w?.consumers.find((c) => c.kind === 'video');
  if (consumer) {
    const report = await consumer.getStats();
    report.forEach((s: Record<string, unknown>) => {
      if (s.type !== 'inbound-rtp' || stats) return;
      const n = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : 0);
      const o = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : null);
      stats = {
        framesDecoded: n('framesDecoded'),
        framesDropped: n('framesDropped'),
        framesPerSecond: o('framesPerSecond'),
        freezeCount: n('freezeCount'),
        totalFreezesDurationSec: n('totalFreezesDuration'),
        frameWidth: o('frameWidth'),
        frameHeight: o('frameHeight'),
        packetsReceived: n('packetsReceived'),
        packetsLost: n('packetsLost'),
        jitterMs: typeof s.jitter === 'number' ? (s.jitter as number) * 1000 : null,
        bytesReceived: n('bytesReceived'),
      };
    });
  }
  return { stats, delays, firstFrameAt: st?.firstFrameAt ?? null, nodeId: demo?.nodeId ?? null, error: demo?.error?.code ?? null };
}

/**
 * A few headless Chromium viewers on the demo's /watch/<id> page: they decode, so they show
 * what a person would see (frames decoded, freezes, resolution) where werift viewers cannot.
 */
export class DecodingViewers {
  readonly #browser: Browser;
  readonly #options: DecodingViewersOptions;
  readonly #deps: DecodingViewersDeps;
  readonly #decoders: Decoder[] = [];
  #closed = false;

  constructor(browser: Browser, options: DecodingViewersOptions, deps: DecodingViewersDeps) {
    this.#browser = browser;
    this.#options = options;
    this.#deps = deps;
  }

  /** Open every page; resolves when each has joined or failed (never rejects). */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.#options.count }, (_, i) => this.#open((this.#options.firstIndex ?? 0) + i)));
  }

  /** Read every page's stats once (call about once per second). */
  async poll(): Promise<void> {
    await Promise.all(this.#decoders.map((d) => this.#poll(d)));
  }

  async stop(): Promise<DecoderResult[]> {
    if (!this.#closed) {
      await this.poll();
      this.#closed = true;
      await Promise.all(this.#decoders.map((d) => d.context?.close().catch(() => {})));
    }
    return this.#decoders
      .sort((a, b) => a.index - b.index)
      .map((d) => ({
        index: d.index,
        ok: d.joinMs !== null && d.error === undefined,
        ...(this.#options.capped ? { capped: true } : {}),
        ...(d.error !== undefined ? { error: d.error } : {}),
        nodeId: d.nodeId,
        joinMs: d.joinMs,
        firstFrameMs: d.firstFrameMs,
        samples: d.samples,
        renderDelay: this.#options.stamped ? d.delay.summary() : null,
        renderDelayHistogram: this.#options.stamped ? d.delay.toJSON() : null,
      }));
  }

  async #open(index: number): Promise<void> {
    const d: Decoder = {
      index,
      context: undefined,
      page: undefined,
      startedAt: this.#deps.now(),
      joinMs: null,
      firstFrameMs: null,
      nodeId: null,
      error: undefined,
      samples: [],
      delay: new LogHistogram(),
    };
    this.#decoders.push(d);
    try {
      d.context = await this.#browser.newContext();
      d.page = await d.context.newPage();
      await d.page.addInitScript(pageInit, { stamped: this.#options.stamped, maxDelays: PAGE_DELAY_BUFFER });
      d.startedAt = this.#deps.now();
      await d.page.goto(`${this.#options.url}/watch/${encodeURIComponent(this.#options.streamId)}`, {
        waitUntil: 'domcontentloaded',
        timeout: JOIN_TIMEOUT_MS,
      });
      const outcome = await d.page.waitForFunction(
        () => {
          const w = window as unknown as { cascadeWatch?: unknown; cascadeDemo?: { error?: { code: string } } };
          return w.cascadeWatch ? 'ok' : (w.cascadeDemo?.error?.code ?? false);
        },
        undefined,
        { timeout: JOIN_TIMEOUT_MS, polling: 20 },
      );
      const value = await outcome.jsonValue();
      if (value === 'ok') d.joinMs = this.#deps.now() - d.startedAt;
      else d.error = String(value);
    } catch (err) {
      d.error = (err as Error).message.split('\n')[0];
    }
  }

  async #poll(d: Decoder): Promise<void> {
    if (!d.page || this.#closed || d.joinMs === null) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const p = await Promise.race([
        d.page.evaluate(pagePoll),
        new Promise<null>((r) => (timer = setTimeout(() => r(null), POLL_TIMEOUT_MS))),
      ]);
      if (!p) return;
      for (const x of p.delays) d.delay.add(x);
      if (p.firstFrameAt !== null && d.firstFrameMs === null) d.firstFrameMs = p.firstFrameAt - d.startedAt;
      if (p.nodeId) d.nodeId = p.nodeId;
      if (p.error && d.error === undefined) d.error = p.error;
      if (p.stats) d.samples.push({ t: this.#deps.elapsedSec(), ...p.stats });
    } catch (err) {
      // A page that crashed or closed stops reporting; the first reason is kept.
      d.error ??= (err as Error).message.split('\n')[0];
    } finally {
      clearTimeout(timer);
    }
  }
}
