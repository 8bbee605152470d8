import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import {
  issueToken,
  launchChromium,
  startChromiumBroadcaster,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type TestBroadcaster,
} from '@cascade/testing';
import { summarize } from '../stats.js';
import type { FailoverViewerMessage } from './failoverViewer.js';
import type { BenchContext, BenchResult } from './types.js';

type Relay = NodeProcess & { nodeId: string };
/** How the relay goes away: a crash, a silent freeze (nothing closes), a planned drain. */
const MODES = ['kill', 'freeze', 'drain'] as const;
type Mode = (typeof MODES)[number];

/**
 * A decoding browser viewer on /watch/<id> that timestamps every frame the <video> element
 * presents (requestVideoFrameCallback): what a person would see, freezes included.
 */
export async function browserViewer(browser: Browser, url: string, streamId: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${url}/watch/${streamId}`);
  await page.waitForFunction(() => (window as unknown as { cascadeDemo: { state: string } }).cascadeDemo?.state === 'live', null, { timeout: 20_000 });
  await page.evaluate(() => {
    const w = window as unknown as { __frames: number[] };
    w.__frames = [];
    const video = document.getElementById('video') as HTMLVideoElement & { requestVideoFrameCallback(cb: () => void): void };
    const tick = () => {
      w.__frames.push(Date.now());
      if (w.__frames.length > 5000) w.__frames.splice(0, 2500);
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  });
  return page;
}

export const presentedFrames = (page: Page) => page.evaluate(() => [...(window as unknown as { __frames: number[] }).__frames]);
export const pageNode = (page: Page) => page.evaluate(() => (window as unknown as { cascadeDemo: { nodeId?: string } }).cascadeDemo.nodeId ?? '');

/** A measured viewer: werift in a process of its own (see failoverViewer.ts). */
export interface BenchViewer {
  nodeId: string;
  /** When its watch() started, and when its first complete key frame arrived. */
  startedAt: number;
  firstKeyframeAt: number | undefined;
  videoTracks: number;
  onFrame?: (at: number, key: boolean, track: number) => void;
  onNode?: (nodeId: string, at: number) => void;
  stop(): void;
}

const VIEWER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'failoverViewer.js');

export function spawnViewer(url: string, streamId: string): Promise<BenchViewer> {
  const proc = fork(VIEWER_SCRIPT, [url, streamId], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
  const v: BenchViewer = {
    nodeId: '',
    startedAt: Date.now(),
    firstKeyframeAt: undefined,
    videoTracks: 0,
    stop: () => {
      if (proc.connected) proc.send('stop');
      setTimeout(() => proc.kill('SIGKILL'), 2000).unref();
    },
  };
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail('no answer within 30 s'), 30_000);
    const fail = (why: string) => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`failover viewer: ${why}\n${stderr}`));
    };
    proc.once('exit', (code) => fail(`exited (${code})`));
    proc.on('message', (m: FailoverViewerMessage) => {
      if (m.t === 'start') v.startedAt = m.at;
      else if (m.t === 'ready') {
        v.nodeId = m.nodeId;
        clearTimeout(timer);
        proc.removeAllListeners('exit');
        resolve(v);
      } else if (m.t === 'frame') {
        v.videoTracks = Math.max(v.videoTracks, m.track);
        if (m.key && v.firstKeyframeAt === undefined) v.firstKeyframeAt = m.at;
        v.onFrame?.(m.at, m.key, m.track);
      } else if (m.t === 'node') {
        v.nodeId = m.id;
        v.onNode?.(m.id, m.at);
      } else fail(m.message);
    });
  });
}

/** A viewer whose first complete key frame on a track started after `since` we wait for. */
export function nextKeyframe(v: BenchViewer, since: number, afterTrack: number, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(null), timeoutMs);
    const previous = v.onFrame;
    const done = (at: number | null) => {
      clearTimeout(timer);
      v.onFrame = previous;
      resolve(at);
    };
    v.onFrame = (at, key, track) => {
      previous?.(at, key, track);
      if (key && track > afterTrack && at >= since) done(at);
    };
  });
}

/**
 * Whether samples fall in groups a key frame period apart (origin.keyFrameRequestDelayMs = 1000):
 * a viewer whose new consumer asks just after another one's request waits for the next key frame
 * the throttle allows. Said only when the run shows it.
 */
function throttleGroups(ms: number[]): string {
  if (ms.length === 0) return '';
  const first = Math.min(...ms);
  const late = ms.filter((m) => m > first + 700).length;
  if (late === 0) return 'Every viewer got the first key frame asked for after the failover (no wait on the key frame throttle). ';
  return `${late} of ${ms.length} waited for the next key frame the throttle allowed (origin.keyFrameRequestDelayMs = 1000), about a second after the first group. `;
}

/** When the viewer's SDK switches to another node (a planned move completes), or null on timeout. */
function nextNodeChange(v: BenchViewer, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const done = (at: number | null) => {
      clearTimeout(timer);
      v.onNode = undefined;
      resolve(at);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    v.onNode = (_id, at) => done(at);
  });
}

/** Record the completion time of every frame `v` receives until the returned function is called. */
export function recordFrames(v: BenchViewer): () => number[] {
  const times: number[] = [];
  const previous = v.onFrame;
  v.onFrame = (at, key, track) => {
    previous?.(at, key, track);
    times.push(at);
  };
  return () => {
    v.onFrame = previous;
    return times;
  };
}

/** Longest gap between consecutive frames in [from, to], counting the edges (ms). */
export function longestGap(times: number[], from: number, to: number): number {
  const inside = times.filter((t) => t >= from && t <= to).sort((a, b) => a - b);
  let prev = from;
  let gap = 0;
  for (const t of inside) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, to - prev);
}

/**
 * Failover: viewers watching through a relay that dies (SIGKILL), freezes (SIGSTOP: nothing
 * closes) or leaves (SIGTERM, a planned move), repeatedly. Per viewer: after a kill, the time to the first complete key frame received
 * from the new node (the first frame it can decode again); after a SIGTERM, the time until the
 * SDK switched to the new node; for both, the longest time without any frame. Baseline (same
 * run): a fresh join through a relay, from watch() to the first complete key frame.
 *
 * The broadcaster is Chromium's fake camera (key frames on request, as a real webcam), the
 * measured viewers receive-only werift clients, each in a process of its own (as real viewers
 * on their own machines reconnect in parallel), plus Chromium pages that decode.
 */
export async function runFailoverBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const rounds = ctx.scale === 'full' ? 20 : 3;
  const perRelay = ctx.scale === 'full' ? 6 : 3;
  const warnings: string[] = [];
  let origin: NodeProcess | undefined;
  let browser: Browser | undefined;
  let broadcaster: TestBroadcaster | undefined;
  const relays: Relay[] = [];
  const viewers: BenchViewer[] = [];
  const keepers: NodeViewer[] = [];
  const samples: Record<Mode, number[]> = { kill: [], freeze: [], drain: [] };
  /** Longest time without any frame around each failover or move, per viewer. */
  const freezes: Record<Mode, number[]> = { kill: [], freeze: [], drain: [] };
  /** The same, as presented by a decoding browser's <video>. */
  const browserFreezes: Record<Mode, number[]> = { kill: [], freeze: [], drain: [] };
  const pages: Page[] = [];
  const browsers = ctx.scale === 'full' ? 2 : 1;
  const joins: number[] = [];
  let failures = 0;
  const joinSamples = ctx.scale === 'full' ? 20 : 4;
  const startRelayProc = async (i: number, maxViewers = perRelay + browsers + 1) =>
    relays[relays.push(await startRelay({ controllerUrl: origin!.url, token: issueToken({ scope: ['relay'], sub: `bench${i}` }), maxViewers, maxChildren: 2 })) - 1]!;
  try {
    origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_TOPOLOGY_MAX_CHILDREN: '2', CASCADE_LOG_LEVEL: 'warn' } });
    browser = await launchChromium();
    broadcaster = await startChromiumBroadcaster(origin.url, browser);
    const streamId = broadcaster.streamId;
    // The baseline: fresh joins through a relay (one with room for all of them), one at a time.
    const joinRelay = await startRelayProc(0, joinSamples + 1);
    for (let i = 0; i < joinSamples; i++) {
      // Spaced beyond the key frame throttle so that each join is measured on its own.
      await new Promise((r) => setTimeout(r, 1100));
      const v = await spawnViewer(origin.url, streamId);
      await waitFor(() => v.firstKeyframeAt !== undefined || undefined, { what: 'a first key frame', timeoutMs: 15_000 }).catch(() => {});
      if (v.firstKeyframeAt !== undefined) joins.push(v.firstKeyframeAt - v.startedAt);
      if (v.nodeId !== joinRelay.nodeId) warnings.push('baseline: a join was not served by the relay');
      v.stop();
    }
    await joinRelay.stop('SIGTERM');
    let current = await startRelayProc(relays.length);
    keepers.push(await startNodeViewer(origin.url, streamId));
    for (let i = 0; i < perRelay; i++) viewers.push(await spawnViewer(origin.url, streamId));
    for (let i = 0; i < browsers; i++) pages.push(await browserViewer(browser, origin.url, streamId));
    if (!viewers.every((v) => v.nodeId === current.nodeId)) warnings.push('setup: not every measured viewer was on the first relay');
    for (const p of pages) if ((await pageNode(p)) !== current.nodeId) warnings.push('setup: a browser viewer was not on the first relay');
    for (const mode of MODES) {
      for (let r = 0; r < rounds; r++) {
        const next = await startRelayProc(relays.length);
        // The current relay is full, so this viewer warms the next one up: the failover target carries the stream already.
        keepers.push(await startNodeViewer(origin.url, streamId));
        await waitFor(() => keepers.at(-1)!.watch.nodeId === next.nodeId || undefined, { what: 'the keeper on the spare relay', timeoutMs: 10_000 }).catch(() =>
          warnings.push(`round ${mode}#${r}: the spare relay was not warmed up by placement`),
        );
        keepers.at(-2)?.stop();
        // Let the key frame request of the keeper's join age past the throttle window
        // (origin.keyFrameRequestDelayMs), so that the failover is measured in steady state.
        await new Promise((r) => setTimeout(r, 1500));
        const tracks = viewers.map((v) => v.videoTracks);
        const recorders = viewers.map((v) => recordFrames(v));
        const t0 = Date.now();
        // A crash: the first decodable frame from the new node. A move: the moment the SDK switches,
        // which it does once the new node's media flows (make-before-break).
        const waits = viewers.map((v, i) => (mode === 'drain' ? nextNodeChange(v, 15_000) : nextKeyframe(v, t0, tracks[i]!, 15_000)));
        if (mode === 'kill') await current.kill();
        else if (mode === 'freeze') current.freeze();
        else void current.stop('SIGTERM');
        const results = await Promise.all(waits);
        for (const at of results) {
          if (at === null) failures++;
          else samples[mode].push(at - t0);
        }
        // Frames keep coming for a moment after the switch; the window covers the move and its aftermath.
        const windowEnd = Math.max(...results.map((a) => a ?? t0)) + 1000;
        await new Promise((r) => setTimeout(r, Math.max(0, windowEnd - Date.now())));
        recorders.forEach((stop, i) => {
          const times = stop();
          if (results[i] !== null) freezes[mode].push(longestGap(times, t0 - 200, windowEnd));
        });
        for (const p of pages) browserFreezes[mode].push(longestGap(await presentedFrames(p), t0 - 200, windowEnd));
        if (mode === 'drain') await current.exited;
        // The frozen machine never comes back in this benchmark.
        if (mode === 'freeze') await current.kill();
        ctx.log(`failover ${mode} round ${r + 1}/${rounds}: ${results.map((a) => (a === null ? 'lost' : `${a - t0}ms`)).join(' ')}`);
        current = next;
      }
    }
  } finally {
    for (const v of [...viewers, ...keepers]) v.stop();
    for (const p of pages) await p.close().catch(() => {});
    await broadcaster?.stop();
    await browser?.close();
    await Promise.all(relays.map((r) => r.kill()));
    await origin?.stop();
  }
  if (failures > 0) warnings.push(`${failures} viewer-rounds got no key frame within 15 s (counted as lost, not in the percentiles)`);
  const kill = summarize(samples.kill);
  const frozen = summarize(samples.freeze);
  const drain = summarize(samples.drain);
  const join = summarize(joins);
  const killFreeze = summarize(freezes.kill);
  const drainFreeze = summarize(freezes.drain);
  const frozenFreeze = summarize(freezes.freeze);
  const killSeen = summarize(browserFreezes.kill);
  const frozenSeen = summarize(browserFreezes.freeze);
  const drainSeen = summarize(browserFreezes.drain);
  // Every viewer's kill-to-first-new-frame: werift's first key frame, Chromium's first presented frame.
  const killAll = summarize([...samples.kill, ...browserFreezes.kill]);
  const frozenAll = summarize([...samples.freeze, ...browserFreezes.freeze]);
  if (!kill || !frozen || !drain || !join || !killFreeze || !frozenFreeze || !drainFreeze || !killSeen || !frozenSeen || !drainSeen || !killAll || !frozenAll) {
    throw new Error('failover bench: no samples');
  }
  return {
    id: 'failover',
    title: 'Failover: relay killed, frozen or drained while viewers watch through it',
    figures: [
      {
        name: 'relay killed (SIGKILL): kill to the first new decoded frame at a browser viewer, p95',
        value: killSeen.p95,
        unit: 'ms',
        baseline: { name: 'fresh join through a relay: watch() to the first decodable frame (werift), p95', value: join.p95, unit: 'ms' },
        ratio: killSeen.p95 / join.p95,
        note: `p50 ${killSeen.p50} ms, max ${killSeen.max} ms over ${killSeen.count} failovers of Chromium viewers (${rounds} kills; the longest time without a presented frame, requestVideoFrameCallback; the spare relay already carries the stream). Includes detection, reconnection through the controller, the new consumer and the key frame. Baseline: ${join.count} fresh joins one at a time, p50 ${join.p50} ms. Lower is better; ratio < 1: recovering is quicker than a first join.`,
      },
      {
        name: 'relay killed: kill to the first complete key frame at a receive-only werift viewer, p95',
        value: kill.p95,
        unit: 'ms',
        baseline: { name: 'the same at a browser viewer (first decoded frame), p95', value: killSeen.p95, unit: 'ms' },
        ratio: kill.p95 / killSeen.p95,
        note: `p50 ${kill.p50} ms, max ${kill.max} ms over ${kill.count} failovers (${perRelay} werift viewers per kill, each in a process of its own). ${throttleGroups(samples.kill)}Over every viewer, werift and Chromium together: p50 ${killAll.p50} ms, p95 ${killAll.p95} ms.`,
      },
      {
        name: 'relay frozen (SIGSTOP: silent, as a laptop lid closing): freeze to the first new decoded frame at a browser viewer, p95',
        value: frozenSeen.p95,
        unit: 'ms',
        baseline: { name: 'relay killed: the same, p95', value: killSeen.p95, unit: 'ms' },
        ratio: frozenSeen.p95 / killSeen.p95,
        note: `p50 ${frozenSeen.p50} ms, max ${frozenSeen.max} ms over ${frozenSeen.count} failovers (${rounds} freezes). Nothing closes, so the SDK notices by its keep-alive instead of a closed socket (a ping once it has heard nothing for 250 ms; unanswered for 500 ms, it moves make-before-break; the node is gone after 1.5 s); the ratio is what silence costs against a crash. werift viewers (first complete key frame): p50 ${frozen.p50} ms, p95 ${frozen.p95} ms; they decode nothing, so the SDK switches them as soon as the new node answers. ${throttleGroups(samples.freeze)}`,
      },
      {
        name: 'planned move (SIGTERM drain): longest time without a presented frame at a browser viewer, p95',
        value: drainSeen.p95,
        unit: 'ms',
        baseline: { name: 'relay killed: the same at a browser viewer, p95', value: killSeen.p95, unit: 'ms' },
        ratio: drainSeen.p95 / killSeen.p95,
        note: `p50 ${drainSeen.p50} ms, max ${drainSeen.max} ms over ${drainSeen.count} browser moves (30 fps presents a frame every 33 ms). Lower is better; the ratio is what make-before-break saves against a crash. Switch-over (signal to the SDK adopting the new node) at werift viewers: p50 ${drain.p50} ms, p95 ${drain.p95} ms; werift viewers decode nothing, so the SDK switches them as soon as the new node answers; they show a gap of p95 ${drainFreeze.p95} ms.`,
      },
    ],
    details: { killAll, frozenAll, kill, frozen, drain, join, killFreeze, frozenFreeze, drainFreeze, browserKillFreeze: killSeen, browserFrozenFreeze: frozenSeen, browserDrainFreeze: drainSeen, rounds, viewersPerRelay: perRelay, browserViewers: browsers },
    warnings,
    durationMs: Date.now() - started,
  };
}
