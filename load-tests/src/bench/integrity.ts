import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH, installWeriftGlobals, issueToken, startNodeViewer, startRelay, startServer, TEST_SECRET, type NodeProcess, type NodeViewer } from '@cascade/testing';
import { ensureAvClip } from '../clip.js';
import { wallClockMs } from '../clock.js';
import { LogHistogram } from '../LogHistogram.js';
import { SyntheticBroadcaster } from '../SyntheticBroadcaster.js';
import { processCpuSeconds } from './capacity/procStat.js';
import type { BenchContext, BenchResult } from './types.js';

/**
 * What verifying every frame costs (issue 19), against the same setup without it, in one run:
 * a stamped 1 Mbit/s VP8 + Opus stream (the synthetic broadcaster: every frame carries its send
 * time) through one relay to a Chromium watch page and to werift viewers in this process.
 *
 * - phase `off`: the origin signs nothing (integrity.enabled=false); the SDK has nothing to check.
 * - phase `on`: the origin signs, every viewer checks every frame; the page holds each frame until
 *   it verifies (the default).
 * - phase `on, no hold`: the same, the page showing frames at once (`?hold=0`): what checking
 *   alone costs the page, apart from the wait.
 *
 * Figures: digest bytes per viewer against the media bytes; CPU per werift viewer and of the
 * viewing browser; the stamp → presented delay at the page; the origin's CPU.
 */
type Phase = 'off' | 'on' | 'on, no hold';

interface PhaseResult {
  phase: Phase;
  delay: NonNullable<ReturnType<LogHistogram['summary']>>;
  /** % of one core, over the window. */
  nodeViewersCpu: number;
  browserCpu: number;
  originCpu: number;
  relayCpu: number;
  /** Per werift viewer, over the window (bytes/s). */
  mediaBytesPerSec: number;
  digestBytesPerSec: number;
  framesVerified: number;
  framesRejected: number;
  pageState: string;
}

const AV_KBPS = 1000;

/** A process and its descendants (pids). */
function tree(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    // none
  }
  return [pid, ...kids.flatMap(tree)];
}
const treeCpu = (pid: number) => tree(pid).reduce((s, p) => s + (processCpuSeconds(p) ?? 0), 0);

/** The main process of the Chromium started with `userDataDir` (its command line names it; its children do not all). */
function chromiumPid(userDataDir: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes(`--user-data-dir=${userDataDir}`) && !cmd.includes('--type=')) return Number(d);
    } catch {
      // gone
    }
  }
  throw new Error('viewing Chromium not found');
}

/** In the page, before its scripts: stamp → presented delay of every painted frame (requestVideoFrameCallback). */
function pageInit(): void {
  type Md = { rtpTimestamp?: number; presentationTime: number };
  type V = HTMLVideoElement & { requestVideoFrameCallback(cb: (now: number, md: Md) => void): number };
  const delays: number[] = [];
  (window as unknown as { __delays: number[] }).__delays = delays;
  const hook = () => {
    const video = document.querySelector('video') as V | null;
    if (!video) return;
    const onFrame = (_n: number, md: Md) => {
      if (md.rtpTimestamp !== undefined && delays.length < 100_000) {
        const wall = performance.timeOrigin + md.presentationTime;
        const d = (((Math.round(wall * 90) >>> 0) - md.rtpTimestamp) | 0) / 90;
        if (Math.abs(d) < 60_000) delays.push(Math.max(0, d));
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', hook, { once: true });
  else hook();
}

async function runPhase(phase: Phase, ctx: BenchContext, o: { measureMs: number; viewers: number }): Promise<PhaseResult> {
  let origin: NodeProcess | undefined;
  let relay: NodeProcess | undefined;
  let broadcaster: SyntheticBroadcaster | undefined;
  let browser: BrowserContext | undefined;
  const viewers: NodeViewer[] = [];
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'cascade-bench-chromium-'));
  try {
    origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_INTEGRITY_ENABLED: String(phase !== 'off'), CASCADE_LOG_LEVEL: 'warn' } });
    relay = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'bench' }), maxViewers: o.viewers + 4 });
    installWeriftGlobals();
    broadcaster = await SyntheticBroadcaster.start(
      { url: origin.url, token: issueToken({ scope: ['broadcast'], sub: 'bench' }, TEST_SECRET), clipPath: await ensureAvClip(AV_KBPS), audio: true, maxDurationSec: Math.ceil(o.measureMs / 1000) + 120 },
      { now: wallClockMs, warn: (m) => ctx.log(m) },
    );
    browser = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS], handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false });
    const page: Page = browser.pages()[0] ?? (await browser.newPage());
    await page.addInitScript(pageInit);
    await page.goto(`${origin.url}/watch/${broadcaster.streamId}${phase === 'on, no hold' ? '?hold=0' : ''}`);
    for (let i = 0; i < o.viewers; i++) viewers.push(await startNodeViewer(origin.url, broadcaster.streamId));
    // Warm-up (first key frames, jitter buffers settled), then one measured window.
    await new Promise((r) => setTimeout(r, 4000));
    const browserPid = chromiumPid(userDataDir);
    const cpu0 = { self: process.cpuUsage(), browser: treeCpu(browserPid), origin: treeCpu(origin.proc.pid!), relay: treeCpu(relay.proc.pid!) };
    const bytes0 = viewers.map((v) => ({ media: v.counters.bytes, digests: v.watch.integrity?.batchBytes ?? 0 }));
    const t0 = Date.now();
    await page.evaluate(() => (window as unknown as { __delays: number[] }).__delays.splice(0));
    await new Promise((r) => setTimeout(r, o.measureMs));
    const secs = (Date.now() - t0) / 1000;
    const self = process.cpuUsage(cpu0.self);
    const delays = await page.evaluate(() => (window as unknown as { __delays: number[] }).__delays.splice(0));
    const hist = new LogHistogram();
    for (const d of delays) hist.add(d);
    const pct = (s: number) => (s / secs) * 100;
    const per = (f: (v: NodeViewer, i: number) => number) => viewers.reduce((s, v, i) => s + f(v, i), 0) / viewers.length / secs;
    const integrity = await page.evaluate(() => (window as unknown as { cascadeWatch?: { integrity?: { state: string; framesVerified: number; framesRejected: number } } }).cascadeWatch?.integrity);
    return {
      phase,
      delay: hist.summary() ?? (() => {
        throw new Error(`phase ${phase}: the page presented no stamped frame`);
      })(),
      nodeViewersCpu: pct((self.user + self.system) / 1e6),
      browserCpu: pct(treeCpu(browserPid) - cpu0.browser),
      originCpu: pct(treeCpu(origin.proc.pid!) - cpu0.origin),
      relayCpu: pct(treeCpu(relay.proc.pid!) - cpu0.relay),
      mediaBytesPerSec: per((v, i) => v.counters.bytes - bytes0[i]!.media),
      digestBytesPerSec: per((v, i) => (v.watch.integrity?.batchBytes ?? 0) - bytes0[i]!.digests),
      framesVerified: viewers.reduce((s, v) => s + (v.watch.integrity?.framesVerified ?? 0), 0) + (integrity?.framesVerified ?? 0),
      framesRejected: viewers.reduce((s, v) => s + (v.watch.integrity?.framesRejected ?? 0), 0) + (integrity?.framesRejected ?? 0),
      pageState: integrity?.state ?? '?',
    };
  } finally {
    for (const v of viewers) v.stop();
    await browser?.close().catch(() => {});
    await broadcaster?.stop();
    await relay?.stop();
    await origin?.stop();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

export async function runIntegrityBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const o = { measureMs: ctx.scale === 'full' ? 30_000 : 8_000, viewers: ctx.scale === 'full' ? 8 : 3 };
  // Phases interleaved (a shared machine's load drifts): off, on, no hold, then back; each figure the mean of its runs.
  const order: Phase[] = ctx.scale === 'full' ? ['off', 'on', 'on, no hold', 'on, no hold', 'on', 'off'] : ['off', 'on', 'on, no hold'];
  const results: PhaseResult[] = [];
  for (const phase of order) {
    ctx.log(`phase ${phase}`);
    results.push(await runPhase(phase, ctx, o));
  }
  const [off, on, noHold] = (['off', 'on', 'on, no hold'] as Phase[]).map((p) => mean(results.filter((r) => r.phase === p))) as [PhaseResult, PhaseResult, PhaseResult];
  const warnings: string[] = [];
  if (on.pageState !== 'verified' || noHold.pageState !== 'verified') warnings.push(`the page was not verified in every checking phase (${on.pageState}, ${noHold.pageState})`);
  if (on.framesRejected + noHold.framesRejected > 0) warnings.push(`${on.framesRejected + noHold.framesRejected} frames rejected in an honest run`);
  const perViewer = (r: PhaseResult) => r.nodeViewersCpu / o.viewers;
  const kbps = (b: number) => (b * 8) / 1000;
  const f1 = (n: number) => n.toFixed(1);
  return {
    id: 'integrity',
    title: 'Verifying every frame (signed digests): bandwidth, CPU, delay',
    figures: [
      {
        name: 'digest channel per viewer',
        value: kbps(on.digestBytesPerSec),
        unit: 'kbit/s',
        baseline: { name: 'the media it vouches for (RTP payloads, same viewers)', value: kbps(on.mediaBytesPerSec), unit: 'kbit/s' },
        ratio: on.digestBytesPerSec / on.mediaBytesPerSec,
        note: `A ${AV_KBPS} kbit/s VP8 + Opus stream (30 + 50 frames/s): a batch every 100 ms with 16-byte digests of that period's frames and the previous period's, a 1-byte layer tag per digest, and a 64-byte signature. Counted as batch bytes, before SCTP/DTLS/UDP framing. Lower is better.`,
      },
      {
        name: 'CPU per werift viewer, checking every frame',
        value: perViewer(on),
        unit: '% of one core',
        baseline: { name: 'the same viewers with nothing to check', value: perViewer(off), unit: '% of one core' },
        ratio: perViewer(on) / perViewer(off),
        note: `${o.viewers} werift viewers in one Node process (SRTP, RTP, frame assembly in both phases; digests: WebCrypto SHA-256 per frame, an ECDSA verification per batch). Lower is better.`,
      },
      {
        name: 'CPU of the viewing Chromium (one watch page), checking every frame',
        value: on.browserCpu,
        unit: '% of one core',
        baseline: { name: 'the same page with nothing to check', value: off.browserCpu, unit: '% of one core' },
        ratio: on.browserCpu / off.browserCpu,
        note: `Every process of the browser (decoding a 640×360 VP8 stream included). Checking without holding frames: ${f1(noHold.browserCpu)} %. Lower is better.`,
      },
      {
        name: 'stamp → presented delay at the page, frames held until they verify, p50',
        value: on.delay.p50,
        unit: 'ms',
        baseline: { name: 'without verification, p50', value: off.delay.p50, unit: 'ms' },
        ratio: on.delay.p50 / off.delay.p50,
        note: `Mean of ${results.filter((r) => r.phase === 'on').length} runs each, interleaved. Added ≈ ${f1(on.delay.p50 - off.delay.p50)} ms at p50, ${f1(on.delay.p95 - off.delay.p95)} ms at p95 (p95 ${f1(on.delay.p95)} vs ${f1(off.delay.p95)} ms): a frame waits for the batch that lists it (batches every 100 ms). Checking without holding: p50 ${f1(noHold.delay.p50)} ms, p95 ${f1(noHold.delay.p95)} ms. Loopback, one relay. Lower is better.`,
      },
      {
        name: 'origin CPU, signing one stream',
        value: on.originCpu,
        unit: '% of one core',
        baseline: { name: 'origin without signing', value: off.originCpu, unit: '% of one core' },
        ratio: on.originCpu / off.originCpu,
        note: `Origin process and its worker: a pipe consumer per source into the Node process, frame assembly, SHA-256 per frame, ECDSA signature per batch, the digest channel to one relay. Relay: ${f1(on.relayCpu)} % vs ${f1(off.relayCpu)} % (passing the channel on to ${o.viewers + 1} viewers). Lower is better.`,
      },
    ],
    details: { phases: results, viewers: o.viewers, measureMs: o.measureMs },
    warnings,
    durationMs: Date.now() - started,
  };
}

/** The mean of several runs of one phase (delays: the mean of their percentiles). */
function mean(runs: PhaseResult[]): PhaseResult {
  const avg = (f: (r: PhaseResult) => number) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
  const first = runs[0]!;
  return {
    ...first,
    delay: { ...first.delay, p50: avg((r) => r.delay.p50), p95: avg((r) => r.delay.p95), p99: avg((r) => r.delay.p99), mean: avg((r) => r.delay.mean), count: runs.reduce((s, r) => s + r.delay.count, 0) },
    nodeViewersCpu: avg((r) => r.nodeViewersCpu),
    browserCpu: avg((r) => r.browserCpu),
    originCpu: avg((r) => r.originCpu),
    relayCpu: avg((r) => r.relayCpu),
    mediaBytesPerSec: avg((r) => r.mediaBytesPerSec),
    digestBytesPerSec: avg((r) => r.digestBytesPerSec),
    framesVerified: runs.reduce((s, r) => s + r.framesVerified, 0),
    framesRejected: runs.reduce((s, r) => s + r.framesRejected, 0),
    pageState: runs.every((r) => r.pageState === first.pageState) ? first.pageState : runs.map((r) => r.pageState).join('/'),
  };
}
