import { cpus, platform } from 'node:os';
import { CascadeError } from '@cascade/protocol';
import type { Browser } from 'playwright-core';
import { saturationWarnings, stampWarning, summarizeRun } from './aggregate.js';
import { startCappedNetwork, type CappedNetwork } from './cappedNetwork.js';
import { ChromiumBroadcaster } from './ChromiumBroadcaster.js';
import { CHROMIUM_ARGS, ensureFakeCamera, launchChromium, launchChromiumInNamespace } from '@cascade/clients';
import { ensureAvClip, ensureClip } from './clip.js';
import { sleep, wallClockMs } from './clock.js';
import { DecodingViewers } from './DecodingViewers.js';
import { HostCpu } from './HostCpu.js';
import type { DecoderResult, LoadTestReport, TimelinePoint } from './LoadTestTypes.js';
import { NodeScraper } from './NodeScraper.js';
import type { LoadTestOptions } from './options.js';
import { formatProgress } from './progress.js';
import { dueJoins } from './ramp.js';
import { SyntheticBroadcaster } from './SyntheticBroadcaster.js';
import { ensureSink } from './sink.js';
import { ViewerFleet, type FleetResult, type SinkLaunch } from './ViewerFleet.js';

export interface LoadTestDeps {
  /** Progress and notices, one line each. */
  print: (line: string) => void;
  /** Where the VP8 clip is cached. */
  cacheDir: string;
  /** Aborting ends the test early; the report is still produced. */
  signal?: AbortSignal;
}

const TICK_MS = 1000;
const LIVE_TIMEOUT_MS = 15_000;

/**
 * One load-test run: broadcaster (optional), simulated viewers in child processes, a few
 * decoding Chromium viewers, and node metrics, sampled once per second into a report.
 * Everything it starts, it stops, also when it fails half-way.
 */
export class LoadTest {
  readonly #o: LoadTestOptions;
  readonly #deps: LoadTestDeps;
  readonly #warnings: string[] = [];
  readonly #hostCpu = new HostCpu();
  #t0 = 0;

  constructor(options: LoadTestOptions, deps: LoadTestDeps) {
    this.#o = options;
    this.#deps = deps;
  }

  async run(): Promise<LoadTestReport> {
    const o = this.#o;
    const startedAt = new Date();
    await this.#checkHealth();
    // Before anything starts: a missing sink is a clear message, not a half-made run.
    const sink: SinkLaunch | undefined =
      o.client === 'sink' && o.viewers > 0
        ? { bin: await ensureSink(), ...(o.sinkCores !== undefined ? { cores: o.sinkCores } : {}), config: { twcc: o.sinkTwcc } }
        : undefined;
    let synthetic: SyntheticBroadcaster | undefined;
    let chromiumCaster: ChromiumBroadcaster | undefined;
    let casterBrowser: Browser | undefined;
    let decoderBrowser: Browser | undefined;
    let decoders: DecodingViewers | undefined;
    const cappedBrowsers: Browser[] = [];
    const cappedDecoders: DecodingViewers[] = [];
    let capNet: CappedNetwork | undefined;
    let fleet: ViewerFleet | undefined;
    let fleetResult: FleetResult | undefined;
    let decoderResults: DecoderResult[] = [];
    let endReason = 'duration';
    const timeline: TimelinePoint[] = [];
    let scraper: NodeScraper | undefined;
    let broadcaster: LoadTestReport['broadcaster'] = { kind: 'external', stamped: false };
    try {
      let streamId = o.streamId;
      if (o.broadcast) {
        const token = o.token ?? (await this.#devToken());
        let kind = o.broadcaster;
        let clipPath: string | undefined;
        if (kind === 'ffmpeg') {
          try {
            clipPath = o.bitrateKbps ? await ensureAvClip(o.bitrateKbps, this.#deps.cacheDir) : await ensureClip(this.#deps.cacheDir);
          } catch (err) {
            this.#warn(`cannot prepare the ffmpeg clip (${(err as Error).message}); falling back to the Chromium broadcaster`);
            kind = 'chromium';
          }
        }
        if (kind === 'ffmpeg') {
          synthetic = await SyntheticBroadcaster.start(
            // The margin covers setup and teardown; ffmpeg must never outlive a run by much.
            { url: o.url, token, clipPath: clipPath!, audio: !!o.bitrateKbps, maxDurationSec: o.durationSec + 120, ...(streamId ? { streamId } : {}) },
            { now: wallClockMs, warn: (m) => this.#warn(m) },
          );
          streamId = synthetic.streamId;
          broadcaster = {
            kind: 'ffmpeg',
            stamped: true,
            detail: o.bitrateKbps
              ? `cached Opus+VP8 clip (${o.bitrateKbps} kbit/s) replayed by ffmpeg, forwarded by werift with wall-clock RTP timestamps on video`
              : 'cached VP8 clip replayed by ffmpeg, forwarded by werift with wall-clock RTP timestamps',
          };
        } else {
          // The fake camera at 30 fps rather than its default 20, or a testsrc picture as costly to encode as a real camera's.
          const camera = o.camera === 'testsrc' ? [`--use-file-for-fake-video-capture=${ensureFakeCamera(720)}`] : [];
          casterBrowser = await launchChromium(undefined, [...CHROMIUM_ARGS.map((a) => (a === '--use-fake-device-for-media-stream' && !camera.length ? `${a}=fps=30` : a)), ...camera]);
          chromiumCaster = await ChromiumBroadcaster.start(casterBrowser, { url: o.url, ...(o.token ? { token: o.token } : {}) });
          streamId = chromiumCaster.streamId;
          broadcaster = { kind: 'chromium', stamped: false, detail: 'web demo /broadcast with the fake camera; frames not stamped, no delay figures' };
        }
        this.#deps.print(`broadcasting stream ${streamId} (${broadcaster.kind})`);
      }
      if (!streamId) throw new TypeError('no stream id');
      await this.#waitLive(streamId);
      if (this.#deps.signal?.aborted) throw new Error('interrupted before the viewers started');

      this.#t0 = Date.now();
      scraper = new NodeScraper({ url: o.url, streamId }, { elapsedSec: () => this.#elapsedSec() });
      if (o.decoders > 0) {
        decoderBrowser = await launchChromium();
        decoders = new DecodingViewers(
          decoderBrowser,
          { url: o.url, streamId, count: o.decoders, stamped: broadcaster.stamped },
          { now: wallClockMs, elapsedSec: () => this.#elapsedSec() },
        );
      }
      if (o.capped + o.cappedDecoders > 0) {
        capNet = await startCappedNetwork(o.url, o.capKbit, o.capped + o.cappedDecoders);
        this.#deps.print(`${o.capped + o.cappedDecoders} capped viewers at ${capNet.url}, each behind its own ${o.capKbit} kbit/s link each way (${capNet.shaping})`);
      }
      // A browser per capped decoder, each in its own namespace (the werift viewers take the first ones).
      for (let i = 0; capNet && i < o.cappedDecoders; i++) {
        // The page comes from the test network's address: a secure context (for WebRTC) only by this flag.
        const b = await launchChromiumInNamespace(capNet.netns[o.capped + i]!, [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${capNet.url}`]);
        cappedBrowsers.push(b);
        cappedDecoders.push(
          new DecodingViewers(
            b,
            { url: capNet.url, streamId, count: 1, stamped: broadcaster.stamped, capped: true, firstIndex: o.decoders + i },
            { now: wallClockMs, elapsedSec: () => this.#elapsedSec() },
          ),
        );
      }
      const decodersStarted = Promise.all([decoders?.start(), ...cappedDecoders.map((d) => d.start())]);
      fleet = new ViewerFleet({
        url: o.url,
        streamId,
        viewers: o.viewers,
        processes: o.processes,
        rampPerSec: o.rampPerSec,
        durationMs: o.durationSec * 1000,
        stamped: broadcaster.stamped,
        freezeGapMs: o.freezeGapMs,
        joinTimeoutMs: o.joinTimeoutMs,
        ...(sink ? { sink, maxInFlightPerProcess: 64 } : {}),
        ...(capNet && o.capped > 0 ? { capped: { netns: capNet.netns.slice(0, o.capped), url: capNet.url } } : {}),
      });
      await fleet.start();
      this.#t0 = Date.now();
      // The machine's CPU during setup (clip encoding, browser start) is not the test's.
      this.#hostCpu.sample();
      timeline.push(this.#point(fleet));
      this.#deps.print(`${o.viewers} ${o.client} viewers in ${o.viewers > 0 ? o.processes : 0} processes, ${o.decoders} decoders, ramp ${o.rampPerSec}/s, ${o.durationSec} s`);

      let scraping: Promise<void> | undefined;
      let polling: Promise<void> | undefined;
      // Bounded by the duration, and by a tick count in case the clock misbehaves.
      for (let tick = 1; tick <= o.durationSec + 5; tick++) {
        await sleep(Math.max(0, this.#t0 + tick * TICK_MS - Date.now()), this.#deps.signal);
        if (this.#deps.signal?.aborted) {
          endReason = 'interrupted';
          break;
        }
        // Scrapes and page polls that take longer than a tick are skipped, not queued.
        scraping ??= scraper
          .scrape()
          // The nodes' figures are extras: a scrape that breaks loses its round, never the test.
          .catch((err: unknown) => this.#warn(`reading the nodes' figures failed: ${(err as Error)?.message ?? String(err)}`))
          .finally(() => (scraping = undefined));
        if (decoders || cappedDecoders.length) polling ??= Promise.all([decoders?.poll(), ...cappedDecoders.map((d) => d.poll())]).then(() => {}).finally(() => (polling = undefined));
        const point = this.#point(fleet);
        timeline.push(point);
        if (o.progress) this.#deps.print(formatProgress(point, o.viewers, scraper.latest()));
        if (Date.now() - this.#t0 >= o.durationSec * 1000) break;
      }
      await Promise.all([scraping, polling, decodersStarted]);
      fleetResult = await fleet.stop();
      if (decoders) decoderResults = await decoders.stop();
      for (const d of cappedDecoders) decoderResults = [...decoderResults, ...(await d.stop())];
      this.#warnings.push(...fleetResult.warnings, ...scraper.errors.map((e) => `scrape: ${e}`));
      const viewers = fleetResult.viewers;
      const summary = summarizeRun({
        target: o.viewers,
        timeline,
        viewers,
        decoders: decoderResults,
        nodes: scraper.series(),
        generator: fleetResult.generator,
        delay: fleetResult.delay.toJSON(),
      });
      for (const w of saturationWarnings(summary)) this.#warn(w);
      const stamps = broadcaster.stamped ? stampWarning(viewers) : undefined;
      if (stamps) this.#warn(stamps);
      if (synthetic && synthetic.packets === 0) this.#warn('the synthetic broadcaster forwarded no packets (ffmpeg did not send)');
      const report: LoadTestReport = {
        tool: 'cascade-load-test',
        version: 1,
        options: { ...o, ...(o.token ? { token: '[redacted]' } : {}) },
        startedAt: startedAt.toISOString(),
        endedAt: new Date().toISOString(),
        streamId,
        broadcaster,
        host: { cpus: cpus().length, platform: platform(), node: process.version },
        endReason,
        summary,
        timeline,
        nodes: scraper.series(),
        generator: fleetResult.generator,
        viewers,
        decoders: decoderResults,
        delayHistogram: fleetResult.delay.toJSON(),
        warnings: this.#warnings,
      };
      return report;
    } finally {
      // Idempotent: on the success path these have already been stopped.
      if (fleet && !fleetResult) await fleet.stop().catch(() => {});
      if (decoders && decoderResults.length === 0) await decoders.stop().catch(() => {});
      await decoderBrowser?.close().catch(() => {});
      if (!decoderResults.some((d) => d.capped)) for (const d of cappedDecoders) await d.stop().catch(() => {});
      for (const b of cappedBrowsers) await b.close().catch(() => {});
      await capNet?.cleanup();
      await synthetic?.stop();
      await chromiumCaster?.stop();
      await casterBrowser?.close().catch(() => {});
    }
  }

  #elapsedSec(): number {
    return this.#t0 ? (Date.now() - this.#t0) / 1000 : 0;
  }

  #point(fleet: ViewerFleet): TimelinePoint {
    const s = fleet.sample();
    const elapsed = Date.now() - this.#t0;
    return {
      t: Math.round(elapsed / 100) / 10,
      target: dueJoins(elapsed, this.#o.rampPerSec, this.#o.viewers),
      started: s.started,
      connected: s.connected,
      joining: s.joining,
      failed: s.failed,
      joins: s.joins,
      rxKbps: s.rxKbps,
      lossPct: s.expected > 0 ? (Math.max(0, s.lost) / s.expected) * 100 : null,
      delayP50Ms: s.delay.count ? s.delay.percentile(50) : null,
      delayP95Ms: s.delay.count ? s.delay.percentile(95) : null,
      fps: s.fps,
      hostCpuPct: this.#hostCpu.sample(),
    };
  }

  #warn(message: string): void {
    if (this.#warnings.length < 100) this.#warnings.push(message);
    this.#deps.print(`warning: ${message}`);
  }

  async #checkHealth(): Promise<void> {
    try {
      const res = await fetch(`${this.#o.url}/healthz`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) this.#warn(`${this.#o.url}/healthz answered ${res.status}`);
    } catch (err) {
      throw new Error(`cannot reach ${this.#o.url}: ${(err as Error).message}`, { cause: err });
    }
  }

  async #devToken(): Promise<string> {
    const res = await fetch(`${this.#o.url}/api/dev/token`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`no development token at ${this.#o.url}/api/dev/token (HTTP ${res.status}): pass --token for a production server`);
    return ((await res.json()) as { token: string }).token;
  }

  /** Wait until the stream is live, so join and first-frame times measure the server, not the broadcaster's start. */
  async #waitLive(streamId: string): Promise<void> {
    const deadline = Date.now() + LIVE_TIMEOUT_MS;
    let state = 'unknown';
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${this.#o.url}/api/streams/${encodeURIComponent(streamId)}`, { signal: AbortSignal.timeout(3000) });
        if (res.status === 404) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', `${streamId} at ${this.#o.url}`);
        if (res.ok) state = ((await res.json()) as { state: string }).state;
        if (state === 'live') return;
        if (state === 'ended') throw new CascadeError('CASCADE_ERR_STREAM_ENDED', streamId);
      } catch (err) {
        // The stream's own answer ends the wait; a failed request (timeout, refused) is tried again.
        if (err instanceof CascadeError) throw err;
      }
      await sleep(250, this.#deps.signal);
      if (this.#deps.signal?.aborted) return;
    }
    this.#warn(`stream ${streamId} is ${state}, not live, after ${LIVE_TIMEOUT_MS / 1000} s; testing anyway`);
  }
}
