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
import { browserViewer, falseAlarms, longestGap, nextKeyframe, nextNodeChange, pageGapOncePlaying, pageNode, recordFrames, spawnViewer, type BenchViewer } from './measuredViewers.js';
import type { BenchContext, BenchFigure, BenchResult } from './types.js';

type Relay = NodeProcess & { nodeId: string };
/** How the relay goes away: a crash, a silent freeze (nothing closes), a planned drain. */
const MODES = ['kill', 'freeze', 'drain'] as const;
type Mode = (typeof MODES)[number];

/** The run's size. */
interface Plan {
  /** Failovers per mode. */
  rounds: number;
  /** Measured werift viewers, and browser pages, on the relay that fails. */
  perRelay: number;
  browsers: number;
  /** Fresh joins for the baseline. */
  joinSamples: number;
}

/** Everything the run starts, so that all of it ends at the end whatever happened. */
interface Procs {
  origin?: NodeProcess;
  browser?: Browser;
  broadcaster?: TestBroadcaster;
  relays: Relay[];
  viewers: BenchViewer[];
  /** Viewers that hold the stream on the next failover target (the latest one; the others are stopped). */
  keepers: NodeViewer[];
  pages: Page[];
}

/** What the phases share once the origin, the browser and the stream are up. */
interface Rig {
  url: string;
  streamId: string;
  browser: Browser;
  plan: Plan;
  procs: Procs;
}

/** What the rounds measure, per mode. */
interface Measured {
  /** Failure to the first complete key frame (a drain: to the SDK's switch), werift viewers. */
  samples: Record<Mode, number[]>;
  /** Per mode, viewers more than 300 ms behind their round's first (see throttleGroups), and those of them whose process was held up (starved). */
  late: Record<Mode, number>;
  lateStarved: Record<Mode, number>;
  /** Longest time without any frame around each failover or move, per viewer. */
  freezes: Record<Mode, number[]>;
  /** The same, as presented by a decoding browser's <video>. */
  browserFreezes: Record<Mode, number[]>;
  /** The baseline: watch() to the first complete key frame of fresh joins. */
  joins: number[];
  /** Viewer-rounds with no key frame (or no switch) within 15 s. */
  failures: number;
  /** What the SDK of each werift viewer among those said (see BenchViewer.report()). */
  neverRecovered: string[];
}

/** A viewer whose own event loop was held up this long during a round was starved of CPU (ms). */
const STARVED_MS = 200;

/**
 * Whether some viewers of a round came well after the others (`late`: more than 300 ms behind
 * their round's first, over `count` in all). Either the viewer's own process was starved on this
 * shared machine (`starved` of them: its event loop held up STARVED_MS or more, so its timers, its
 * detection among them, ran late; on a viewer's own machine that does not happen), or it asked for
 * its key frame just after another and waited for the next one the per-layer throttle allowed
 * (origin.layerKeyFrameRequestDelayMs, 350 ms for the lowest layer).
 */
function throttleGroups(late: number, starved: number, count: number): string {
  if (count === 0) return '';
  if (late === 0) return "Every viewer got its round's first key frame (no wait on the key frame throttle). ";
  return `${late} of ${count} came more than 300 ms after their round's first viewer; ${starved} of those had their own process held up ${STARVED_MS} ms or more during the round (starved of CPU on this shared machine: its timers, its detection among them, ran late); the others most likely waited for the next key frame the per-layer throttle allowed (350 ms for the lowest layer). `;
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
  const plan = planFor(ctx.scale);
  const warnings: string[] = [];
  const procs: Procs = { relays: [], viewers: [], keepers: [], pages: [] };
  const m: Measured = { samples: { kill: [], freeze: [], drain: [] }, late: { kill: 0, freeze: 0, drain: 0 }, lateStarved: { kill: 0, freeze: 0, drain: 0 }, freezes: { kill: [], freeze: [], drain: [] }, browserFreezes: { kill: [], freeze: [], drain: [] }, joins: [], failures: 0, neverRecovered: [] };
  try {
    procs.origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_TOPOLOGY_MAX_CHILDREN: '2', CASCADE_LOG_LEVEL: 'warn' } });
    procs.browser = await launchChromium();
    procs.broadcaster = await startChromiumBroadcaster(procs.origin.url, procs.browser);
    const rig: Rig = { url: procs.origin.url, streamId: procs.broadcaster.streamId, browser: procs.browser, plan, procs };
    await measureJoins(rig, m.joins, warnings);
    let current = await placeViewers(rig, warnings);
    for (const mode of MODES) {
      for (let r = 0; r < plan.rounds; r++) {
        const next = await warmSpare(rig, mode, r, warnings);
        await failAndMeasure(ctx, rig, current, mode, r, m);
        current = next;
      }
    }
    const alarms = await falseAlarms(procs.viewers);
    warnings.push(`integrity alarms raised by the measured werift viewers (every relay is honest): ${alarms.length}${alarms.length ? ` (${alarms.slice(0, 6).join('; ')})` : ''}`);
  } finally {
    await stopAll(procs);
  }
  return failoverResult(plan, m, warnings, started);
}

/** The run's size by scale: failovers per mode, measured viewers of each kind, baseline joins. */
function planFor(scale: BenchContext['scale']): Plan {
  return {
    rounds: scale === 'full' ? 20 : 3,
    perRelay: scale === 'full' ? 6 : 3,
    browsers: scale === 'full' ? 2 : 1,
    joinSamples: scale === 'full' ? 20 : 4,
  };
}

/** Starts relay number i under the origin; by default with room for the measured viewers and one keeper. */
async function startRelayProc(rig: Rig, i: number, maxViewers = rig.plan.perRelay + rig.plan.browsers + 1): Promise<Relay> {
  const { relays } = rig.procs;
  return relays[relays.push(await startRelay({ controllerUrl: rig.url, token: issueToken({ scope: ['relay'], sub: `bench${i}` }), maxViewers, maxChildren: 2 })) - 1]!;
}

/** The baseline: fresh joins through a relay (one with room for all of them), one at a time. */
async function measureJoins(rig: Rig, joins: number[], warnings: string[]): Promise<void> {
  const joinRelay = await startRelayProc(rig, 0, rig.plan.joinSamples + 1);
  for (let i = 0; i < rig.plan.joinSamples; i++) {
    // Spaced beyond the key frame throttle so that each join is measured on its own.
    await new Promise((r) => setTimeout(r, 1100));
    const v = await spawnViewer(rig.url, rig.streamId);
    await waitFor(() => v.firstKeyframeAt !== undefined || undefined, { what: 'a first key frame', timeoutMs: 15_000 }).catch(() => {});
    if (v.firstKeyframeAt !== undefined) joins.push(v.firstKeyframeAt - v.startedAt);
    if (v.nodeId !== joinRelay.nodeId) warnings.push('baseline: a join was not served by the relay');
    v.stop();
  }
  await joinRelay.stop('SIGTERM');
}

/** Fills a first relay: a keeper, then the measured viewers (werift and browsers); returns it, the first to fail. */
async function placeViewers(rig: Rig, warnings: string[]): Promise<Relay> {
  const { url, streamId, procs } = rig;
  const current = await startRelayProc(rig, procs.relays.length);
  procs.keepers.push(await startNodeViewer(url, streamId));
  for (let i = 0; i < rig.plan.perRelay; i++) procs.viewers.push(await spawnViewer(url, streamId));
  for (let i = 0; i < rig.plan.browsers; i++) procs.pages.push(await browserViewer(rig.browser, url, streamId));
  if (!procs.viewers.every((v) => v.nodeId === current.nodeId)) warnings.push('setup: not every measured viewer was on the first relay');
  for (const p of procs.pages) if ((await pageNode(p)) !== current.nodeId) warnings.push('setup: a browser viewer was not on the first relay');
  return current;
}

/** Starts the relay the viewers will fail over to, carrying the stream already (as a busy tree's would); returns it. */
async function warmSpare(rig: Rig, mode: Mode, r: number, warnings: string[]): Promise<Relay> {
  const { keepers } = rig.procs;
  const next = await startRelayProc(rig, rig.procs.relays.length);
  // The current relay is full, so this viewer warms the next one up: the failover target carries the stream already.
  keepers.push(await startNodeViewer(rig.url, rig.streamId));
  await waitFor(() => keepers.at(-1)!.watch.nodeId === next.nodeId || undefined, { what: 'the keeper on the spare relay', timeoutMs: 10_000 }).catch(() =>
    warnings.push(`round ${mode}#${r}: the spare relay was not warmed up by placement`),
  );
  keepers.at(-2)?.stop();
  // Let the key frame request of the keeper's join age past the throttle window
  // (origin.keyFrameRequestDelayMs), so that the failover is measured in steady state.
  await new Promise((r) => setTimeout(r, 1500));
  return next;
}

/** Fails the current relay (kill, freeze or drain) and times each measured viewer's recovery and its longest gap. */
async function failAndMeasure(ctx: BenchContext, rig: Rig, current: Relay, mode: Mode, r: number, m: Measured): Promise<void> {
  const { viewers, pages } = rig.procs;
  const tracks = viewers.map((v) => v.videoTracks);
  const recorders = viewers.map((v) => recordFrames(v));
  await Promise.all(viewers.map((v) => v.lag()));
  const t0 = Date.now();
  // A crash: the first decodable frame from the new node. A move: the moment the SDK switches,
  // which it does once the new node's media flows (make-before-break).
  const waits = viewers.map((v, i) => (mode === 'drain' ? nextNodeChange(v, 15_000) : nextKeyframe(v, t0, tracks[i]!, 15_000)));
  if (mode === 'kill') await current.kill();
  else if (mode === 'freeze') current.freeze();
  else void current.stop('SIGTERM');
  const results = await Promise.all(waits);
  for (const [i, at] of results.entries()) {
    if (at !== null) {
      m.samples[mode].push(at - t0);
      continue;
    }
    m.failures++;
    m.neverRecovered.push(`${mode}#${r}: ${(await viewers[i]!.report()).join('; ')}`);
  }
  const got = results.flatMap((at) => (at === null ? [] : [at - t0]));
  const lags = await Promise.all(viewers.map((v) => v.lag()));
  if (got.length > 0) {
    const first = Math.min(...got);
    const late = results.flatMap((at, i) => (at !== null && at - t0 > first + 300 ? [i] : []));
    m.late[mode] += late.length;
    m.lateStarved[mode] += late.filter((i) => lags[i]! >= STARVED_MS).length;
  }
  // Frames keep coming for a moment after the switch; the window covers the move and its aftermath.
  const windowEnd = Math.max(...results.map((a) => a ?? t0)) + 1000;
  await new Promise((r) => setTimeout(r, Math.max(0, windowEnd - Date.now())));
  recorders.forEach((stop, i) => {
    const times = stop();
    if (results[i] !== null) m.freezes[mode].push(longestGap(times, t0 - 200, windowEnd));
  });
  for (const p of pages) {
    const gap = await pageGapOncePlaying(p, t0 - 200, windowEnd, t0 + 15_000);
    if (gap === null) m.failures++;
    else m.browserFreezes[mode].push(gap);
  }
  if (mode === 'drain') await current.exited;
  // The frozen machine never comes back in this benchmark.
  if (mode === 'freeze') await current.kill();
  ctx.log(`failover ${mode} round ${r + 1}/${rig.plan.rounds}: ${results.map((a) => (a === null ? 'lost' : `${a - t0}ms`)).join(' ')}`);
}

/** Ends everything the run started, the viewers first. */
async function stopAll(procs: Procs): Promise<void> {
  for (const v of [...procs.viewers, ...procs.keepers]) v.stop();
  for (const p of procs.pages) await p.close().catch(() => {});
  await procs.broadcaster?.stop();
  await procs.browser?.close();
  await Promise.all(procs.relays.map((r) => r.kill()));
  await procs.origin?.stop();
}

/** Every distribution the figures use; throws when one is empty (nothing of that kind was measured). */
function summaries(m: Measured) {
  const kill = summarize(m.samples.kill);
  const frozen = summarize(m.samples.freeze);
  const drain = summarize(m.samples.drain);
  const join = summarize(m.joins);
  const killFreeze = summarize(m.freezes.kill);
  const drainFreeze = summarize(m.freezes.drain);
  const frozenFreeze = summarize(m.freezes.freeze);
  const killSeen = summarize(m.browserFreezes.kill);
  const frozenSeen = summarize(m.browserFreezes.freeze);
  const drainSeen = summarize(m.browserFreezes.drain);
  // Every viewer's kill-to-first-new-frame: werift's first key frame, Chromium's first presented frame.
  const killAll = summarize([...m.samples.kill, ...m.browserFreezes.kill]);
  const frozenAll = summarize([...m.samples.freeze, ...m.browserFreezes.freeze]);
  if (!kill || !frozen || !drain || !join || !killFreeze || !frozenFreeze || !drainFreeze || !killSeen || !frozenSeen || !drainSeen || !killAll || !frozenAll) {
    throw new Error('failover bench: no samples');
  }
  return { kill, frozen, drain, join, killFreeze, drainFreeze, frozenFreeze, killSeen, frozenSeen, drainSeen, killAll, frozenAll };
}
type Sums = ReturnType<typeof summaries>;

/** The figures, the warnings and the distributions behind them. */
function failoverResult(plan: Plan, m: Measured, warnings: string[], started: number): BenchResult {
  if (m.failures > 0) warnings.push(`${m.failures} viewer-rounds got no key frame (werift) or showed no picture (browser) within 15 s (counted as lost, not in the percentiles)`);
  for (const n of m.neverRecovered) warnings.push(`never recovered, ${n}`);
  const x = summaries(m);
  const { killAll, frozenAll, kill, frozen, drain, join, killFreeze, frozenFreeze, drainFreeze, killSeen, frozenSeen, drainSeen } = x;
  return {
    id: 'failover',
    title: 'Failover: relay killed, frozen or drained while viewers watch through it',
    figures: failoverFigures(x, plan, m),
    details: { killAll, frozenAll, kill, frozen, drain, join, killFreeze, frozenFreeze, drainFreeze, browserKillFreeze: killSeen, browserFrozenFreeze: frozenSeen, browserDrainFreeze: drainSeen, rounds: plan.rounds, viewersPerRelay: plan.perRelay, browserViewers: plan.browsers },
    warnings,
    durationMs: Date.now() - started,
  };
}

/** Kill at a browser against a first join; werift against the browser; freeze and drain against kill. */
function failoverFigures(x: Sums, plan: Plan, m: Measured): BenchFigure[] {
  const { rounds, perRelay } = plan;
  const { kill, frozen, drain, join, drainFreeze, killSeen, frozenSeen, drainSeen, killAll } = x;
  return [
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
      note: `p50 ${kill.p50} ms, max ${kill.max} ms over ${kill.count} failovers (${perRelay} werift viewers per kill, each in a process of its own). ${throttleGroups(m.late.kill, m.lateStarved.kill, m.samples.kill.length)}Over every viewer, werift and Chromium together: p50 ${killAll.p50} ms, p95 ${killAll.p95} ms.`,
    },
    {
      name: 'relay frozen (SIGSTOP: silent, as a laptop lid closing): freeze to the first new decoded frame at a browser viewer, p95',
      value: frozenSeen.p95,
      unit: 'ms',
      baseline: { name: 'relay killed: the same, p95', value: killSeen.p95, unit: 'ms' },
      ratio: frozenSeen.p95 / killSeen.p95,
      note: `p50 ${frozenSeen.p50} ms, max ${frozenSeen.max} ms over ${frozenSeen.count} failovers (${rounds} freezes). Nothing closes, so the SDK notices by its keep-alive instead of a closed socket (a ping as soon as no frame has come for 120 ms, or nothing was heard for 200 ms; unanswered for 150 ms with no media since, it moves make-before-break; the node is gone after 1.5 s); the ratio is what silence costs against a crash. werift viewers (first complete key frame): p50 ${frozen.p50} ms, p95 ${frozen.p95} ms; they decode nothing, so the SDK switches them as soon as the new node answers. ${throttleGroups(m.late.freeze, m.lateStarved.freeze, m.samples.freeze.length)}`,
    },
    {
      name: 'planned move (SIGTERM drain): longest time without a presented frame at a browser viewer, p95',
      value: drainSeen.p95,
      unit: 'ms',
      baseline: { name: 'relay killed: the same at a browser viewer, p95', value: killSeen.p95, unit: 'ms' },
      ratio: drainSeen.p95 / killSeen.p95,
      note: `p50 ${drainSeen.p50} ms, max ${drainSeen.max} ms over ${drainSeen.count} browser moves (30 fps presents a frame every 33 ms). Lower is better; the ratio is what make-before-break saves against a crash. Switch-over (signal to the SDK adopting the new node) at werift viewers: p50 ${drain.p50} ms, p95 ${drain.p95} ms; werift viewers decode nothing, so the SDK switches them as soon as the new node answers; they show a gap of p95 ${drainFreeze.p95} ms.`,
    },
  ];
}
