import type { Browser, Page } from 'playwright-core';
import { getJson, issueToken, launchChromium, startChromiumBroadcaster, startRelay, startServer, waitFor, type NodeProcess, type TestBroadcaster } from '@cascade/testing';
import { HostCpu } from '../HostCpu.js';
import { summarize, type Summary } from '../stats.js';
import { browserViewer, falseAlarms, nextKeyframe, pageGapOncePlaying, pageNode, recordFrames, spawnViewer, type BenchViewer } from './measuredViewers.js';
import type { BenchContext, BenchFigure, BenchResult } from './types.js';

type Relay = NodeProcess & { nodeId: string };
const MODES = ['kill', 'freeze'] as const;
type Mode = (typeof MODES)[number];
/** Which relay fails: I (it feeds L) or the leaf L under it. */
type Target = 'inner' | 'leaf';
type Case = `${Target}-${Mode}`;
const CASES: Case[] = ['inner-kill', 'inner-freeze', 'leaf-kill', 'leaf-freeze'];
/** A viewer with no new picture this long after the failure counts as never recovered. */
const GIVE_UP_MS = 15_000;

interface Samples {
  /** Failure to the first complete key frame on a new track, werift viewers of the lost relay and of its child. */
  werift: { lost: number[]; below: number[] };
  /** Longest time without a presented frame around the failure, Chromium viewers. */
  chromium: { lost: number[]; below: number[] };
  failures: number;
  rounds: number;
  /** Rounds not measured: the tree or the viewers were not as the case needs (a viewer not below the failed relay cannot fail over). */
  skipped: number;
}

/** The run's size. */
interface Plan {
  roundsOf: (c: Case) => number;
  budgetMs: number;
  /** werift viewers on each measured relay (plus one Chromium viewer). */
  perRelay: number;
}

/** What every round shares: the origin, the browser, the stream, a way to start relays. */
interface Rig {
  origin: NodeProcess;
  browser: Browser;
  streamId: string;
  newRelay(maxViewers: number, maxChildren: number): Promise<Relay>;
}

/** One round's relays (I, L, the spare S of a leaf case) and viewers; `lost`: on I, else on L. */
interface Round {
  inner: Relay;
  leaf: Relay;
  spare: Relay | undefined;
  viewers: { v: BenchViewer; lost: boolean }[];
  pages: { p: Page; lost: boolean }[];
}

/** What the rounds gather: samples per case, how busy the machine was at each failure, warnings. */
interface Tally {
  samples: Record<Case, Samples>;
  warnings: string[];
  cpu: HostCpu;
  busy: number[];
}

/** Each case as its figure names it. */
const LABEL: Record<Case, string> = {
  'inner-kill': 'inner relay killed (SIGKILL)',
  'inner-freeze': 'inner relay frozen (SIGSTOP: silent, nothing closes)',
  'leaf-kill': 'leaf relay killed (SIGKILL)',
  'leaf-freeze': 'leaf relay frozen (SIGSTOP)',
};
/** Each case's baseline: the same relay failing the other way. */
const OTHER: Record<Case, Case> = { 'inner-kill': 'inner-freeze', 'inner-freeze': 'inner-kill', 'leaf-kill': 'leaf-freeze', 'leaf-freeze': 'leaf-kill' };

/**
 * Failover of an inner relay and of a leaf: relay I under the origin serves viewers and feeds
 * relay L, which serves viewers of its own. I dies (SIGKILL) or freezes (SIGSTOP: nothing
 * closes, nobody hears from it): I's viewers must find another node; L must find another
 * parent, and its viewers keep their node while their pictures come from the new parent. Or L
 * dies or freezes: its viewers move to a spare relay S that came up under I once everyone was
 * placed (I's viewers are not measured then). Per viewer: time from the failure to the first
 * decodable frame again (werift: first complete key frame on a new track; Chromium: the longest
 * time without a presented frame). A fresh I and L each round; the origin feeds a single relay
 * (origin.maxChildRelays = 1) so that L goes under I. Bounded by a number of rounds per case
 * and a time budget, whichever comes first.
 */
export async function runInnerFailoverBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const plan = planFor(ctx.scale);
  const fresh = (): Samples => ({ werift: { lost: [], below: [] }, chromium: { lost: [], below: [] }, failures: 0, rounds: 0, skipped: 0 });
  const tally: Tally = { samples: Object.fromEntries(CASES.map((c) => [c, fresh()])) as Record<Case, Samples>, warnings: [], cpu: new HostCpu(), busy: [] };
  let stopReason: string;
  let origin: NodeProcess | undefined;
  let browser: Browser | undefined;
  let broadcaster: TestBroadcaster | undefined;
  try {
    origin = await startServer({
      env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_TOPOLOGY_MAX_CHILDREN: '2', CASCADE_ORIGIN_MAX_CHILD_RELAYS: '1', CASCADE_LOG_LEVEL: 'warn' },
    });
    browser = await launchChromium();
    broadcaster = await startChromiumBroadcaster(origin.url, browser);
    const rig: Rig = { origin, browser, streamId: broadcaster.streamId, newRelay: relayStarter(origin) };
    stopReason = await runCases(ctx, plan, rig, tally, started);
  } finally {
    await broadcaster?.stop();
    await browser?.close();
    await origin?.stop();
  }
  return innerFailoverResult(plan, tally, stopReason, started);
}

/** The run's size by scale: rounds per case (more of the inner ones, the harder case), the time budget, werift viewers per relay. */
function planFor(scale: BenchContext['scale']): Plan {
  const full = scale === 'full';
  return {
    roundsOf: (c: Case) => (c.startsWith('inner') ? (full ? 5 : 2) : full ? 4 : 1),
    budgetMs: full ? 8 * 60_000 : 4 * 60_000,
    perRelay: full ? 3 : 2,
  };
}

/** Starts relays under the origin, each with a token of its own. */
function relayStarter(origin: NodeProcess): Rig['newRelay'] {
  let relayCount = 0;
  return (maxViewers, maxChildren) => startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: `inner${relayCount++}` }), maxViewers, maxChildren });
}

/** Every case's rounds in turn, until the time budget; returns why the run stopped. */
async function runCases(ctx: BenchContext, plan: Plan, rig: Rig, tally: Tally, started: number): Promise<string> {
  for (const c of CASES) {
    for (let r = 0; r < plan.roundsOf(c); r++) {
      if (Date.now() - started > plan.budgetMs) {
        const stopReason = `time budget of ${plan.budgetMs / 60_000} min reached during ${c} (rounds run: ${CASES.map((x) => `${x} ${tally.samples[x].rounds}`).join(', ')})`;
        tally.warnings.push(stopReason);
        return stopReason;
      }
      await runRound(ctx, plan, rig, tally, c, r);
    }
  }
  return `every case ran its rounds (${CASES.map((c) => `${c} ${plan.roundsOf(c)}`).join(', ')})`;
}

/** One round: a fresh I and L, the viewers placed, one failure measured if the tree is as the case needs; the round's relays and viewers end with it. */
async function runRound(ctx: BenchContext, plan: Plan, rig: Rig, tally: Tally, c: Case, r: number): Promise<void> {
  const [target] = c.split('-') as [Target, Mode];
  // For a leaf case, I keeps a slot for the spare relay that takes L's viewers.
  const inner = await rig.newRelay(plan.perRelay + 1, target === 'leaf' ? 2 : 1);
  const leaf = await rig.newRelay(2 * plan.perRelay + 4, 0);
  const round: Round = { inner, leaf, spare: undefined, viewers: [], pages: [] };
  try {
    await placeViewers(plan, rig, round);
    const misplaced = await treeMismatch(rig, round);
    if (misplaced.length) {
      // Not the case measured here: its failures would be counted for viewers that never lost anything.
      tally.samples[c].skipped++;
      tally.warnings.push(`${c}#${r}: round skipped, not the tree the case needs: ${misplaced.join('; ')}`);
      ctx.log(`${c} round ${r + 1}/${plan.roundsOf(c)}: skipped (${misplaced.join('; ')})`);
      return;
    }
    if (target === 'leaf') round.spare = await rig.newRelay(2 * plan.perRelay + 4, 0);
    await measureFailure(ctx, plan, tally, c, r, round);
  } finally {
    await endRound(rig, tally, round, c, r);
  }
}

/** Fills I with viewers (werift and one Chromium), then L: the viewers marked lost are I's. */
async function placeViewers(plan: Plan, rig: Rig, round: Round): Promise<void> {
  const { origin, browser, streamId } = rig;
  for (let i = 0; i < plan.perRelay; i++) round.viewers.push({ v: await spawnViewer(origin.url, streamId), lost: true });
  round.pages.push({ p: await browserViewer(browser, origin.url, streamId), lost: true });
  // The inner relay is full: these go to the leaf, attached under it.
  for (let i = 0; i < plan.perRelay; i++) round.viewers.push({ v: await spawnViewer(origin.url, streamId), lost: false });
  round.pages.push({ p: await browserViewer(browser, origin.url, streamId), lost: false });
}

/** What is not where the case needs it (L under I, each viewer on its relay); empty when the tree is right. */
async function treeMismatch(rig: Rig, round: Round): Promise<string[]> {
  const { inner, leaf, viewers, pages } = round;
  const topo = (await getJson<{ nodes: { id: string; parent: string | null }[] }>(`${rig.origin.url}/api/streams/${rig.streamId}/topology`)).body.nodes;
  const misplaced: string[] = [];
  if (topo.find((n) => n.id === leaf.nodeId)?.parent !== inner.nodeId) misplaced.push(`the leaf relay was not under the inner one (${JSON.stringify(topo)})`);
  for (const x of viewers) if (x.v.nodeId !== (x.lost ? inner.nodeId : leaf.nodeId)) misplaced.push(`a werift viewer on ${x.v.nodeId}`);
  for (const x of pages) if ((await pageNode(x.p)) !== (x.lost ? inner.nodeId : leaf.nodeId)) misplaced.push('a browser viewer elsewhere');
  return misplaced;
}

/** Fails I or L once every viewer plays, and records how long each viewer below it went without a decodable frame. */
async function measureFailure(ctx: BenchContext, plan: Plan, tally: Tally, c: Case, r: number, round: Round): Promise<void> {
  const [target, mode] = c.split('-') as [Target, Mode];
  const { viewers, pages } = round;
  const samples = tally.samples[c];
  // Steady state: every viewer past its first key frame and its step-ups.
  await waitFor(() => viewers.every((x) => x.v.firstKeyframeAt !== undefined) || undefined, { what: 'every viewer playing', timeoutMs: 15_000 });
  await new Promise((res) => setTimeout(res, 2000));
  tally.cpu.sample();
  // Inner case: every viewer is below the failed relay ('lost' on it, the others on its child).
  // Leaf case: only the leaf's viewers are, and they all lost their node.
  const measured = target === 'inner' ? viewers : viewers.filter((x) => !x.lost).map((x) => ({ ...x, lost: true }));
  const measuredPages = target === 'inner' ? pages : pages.filter((x) => !x.lost).map((x) => ({ ...x, lost: true }));
  const failed = target === 'inner' ? round.inner : round.leaf;
  const tracks = measured.map((x) => x.v.videoTracks);
  const recorders = measured.map((x) => recordFrames(x.v));
  const t0 = Date.now();
  const waits = measured.map((x, i) => nextKeyframe(x.v, t0, tracks[i]!, GIVE_UP_MS));
  if (mode === 'kill') await failed.kill();
  else failed.freeze();
  const results = await Promise.all(waits);
  const windowEnd = Math.max(...results.map((a) => a ?? t0)) + 1000;
  await new Promise((res) => setTimeout(res, Math.max(0, windowEnd - Date.now())));
  const load = tally.cpu.sample();
  if (load !== null) tally.busy.push(load);
  for (const [i, at] of results.entries()) {
    recorders[i]!();
    if (at !== null) {
      samples.werift[measured[i]!.lost ? 'lost' : 'below'].push(at - t0);
      continue;
    }
    samples.failures++;
    // Why, in the report: what its SDK saw and did from the failure on.
    tally.warnings.push(`${c}#${r}: a werift viewer ${measured[i]!.lost ? 'of the failed relay' : 'below it'} never recovered: ${(await measured[i]!.v.report()).join('; ')}`);
  }
  const gaps = await recordPageGaps(samples, measuredPages, t0, windowEnd);
  samples.rounds++;
  ctx.log(`${c} round ${r + 1}/${plan.roundsOf(c)}: werift ${results.map((a, i) => `${measured[i]!.lost ? 'lost' : 'below'}:${a === null ? 'never' : `${a - t0}ms`}`).join(' ')}; Chromium ${gaps.join(' ')}; cpu ${load?.toFixed(0)} %`);
}

/** Each browser viewer's longest time without a presented frame around the failure, into the samples; returned for the log. */
async function recordPageGaps(samples: Samples, pages: { p: Page; lost: boolean }[], t0: number, windowEnd: number): Promise<string[]> {
  const gaps: string[] = [];
  for (const x of pages) {
    const gap = await pageGapOncePlaying(x.p, t0 - 200, windowEnd, t0 + GIVE_UP_MS);
    gaps.push(`${x.lost ? 'lost' : 'below'}:${gap === null ? 'never' : `${gap}ms`}`);
    if (gap === null || gap >= GIVE_UP_MS) samples.failures++;
    else samples.chromium[x.lost ? 'lost' : 'below'].push(gap);
  }
  return gaps;
}

/** Ends the round's viewers and relays, then waits until the controller no longer lists the relays. */
async function endRound(rig: Rig, tally: Tally, round: Round, c: Case, r: number): Promise<void> {
  const { inner, leaf, spare } = round;
  for (const alarm of await falseAlarms(round.viewers.map((x) => x.v))) tally.warnings.push(`${c}#${r}: integrity alarm on an honest relay: ${alarm.slice('alarm: '.length)}`);
  for (const x of round.viewers) x.v.stop();
  for (const x of round.pages) await x.p.close().catch(() => {});
  await inner.kill();
  await leaf.kill();
  await spare?.kill();
  // The origin's relay slot frees once the controller has seen them go: the next round's
  // inner relay must take it (a frozen one is noticed only when its heartbeats expire).
  const gone = [inner.nodeId, leaf.nodeId, ...(spare ? [spare.nodeId] : [])];
  const cleared = await waitFor(
    async () => (await getJson<{ nodes: { id: string }[] }>(`${rig.origin.url}/api/nodes`)).body.nodes.every((n) => !gone.includes(n.id)) || undefined,
    { what: "this round's relays gone from the controller", timeoutMs: 20_000 },
  ).catch(() => false);
  if (!cleared) tally.warnings.push(`${c}#${r}: the controller still listed this round's relays 20 s after they ended`);
}

/** The figures (each case against its kill/freeze counterpart), the warnings, and the samples behind them. */
function innerFailoverResult(plan: Plan, tally: Tally, stopReason: string, started: number): BenchResult {
  const { samples, warnings } = tally;
  const all = (c: Case) => [...samples[c].werift.lost, ...samples[c].werift.below, ...samples[c].chromium.lost, ...samples[c].chromium.below];
  const sums = Object.fromEntries(CASES.map((c) => [c, summaryOf(all(c))])) as Record<Case, Summary>;
  if (sums['inner-kill'].count === 0 || sums['inner-freeze'].count === 0) throw new Error('inner failover bench: no samples');
  const failures = CASES.reduce((n, c) => n + samples[c].failures, 0);
  if (failures > 0) warnings.push(`${failures} viewer-failovers never recovered within ${GIVE_UP_MS / 1000} s (counted as failures, not in the percentiles)`);
  const cpuLoad = summaryOf(tally.busy);
  const figures = CASES.filter((c) => sums[c].count > 0 && sums[OTHER[c]].count > 0).map((c) => caseFigure(c, sums, samples[c], plan.perRelay));
  return {
    id: 'innerFailover',
    title: 'Failover of an inner relay (one that feeds another relay) and of a leaf: every viewer below it',
    figures,
    details: { samples, summaries: sums, cpuBusyPercent: cpuLoad, roundsPerCase: Object.fromEntries(CASES.map((c) => [c, plan.roundsOf(c)])), viewersPerRelay: plan.perRelay + 1, stopReason },
    warnings: [...warnings, `machine busy during the failovers: p50 ${cpuLoad.p50?.toFixed?.(0)} %, max ${cpuLoad.max?.toFixed?.(0)} % of all cores; stop: ${stopReason}`],
    durationMs: Date.now() - started,
  };
}

/** One case's figure: its p95, against the same case with the other way of failing (kill against freeze). */
function caseFigure(c: Case, sums: Record<Case, Summary>, samples: Samples, perRelay: number): BenchFigure {
  const x = sums[c];
  const scope = c.startsWith('inner') ? 'every viewer below it' : 'its viewers';
  const who = c.startsWith('inner') ? `${perRelay} werift + 1 Chromium viewer on the failed relay and as many on the relay it fed` : `${perRelay} werift + 1 Chromium viewer on the leaf, moving to a spare relay`;
  return {
    name: `${LABEL[c]}: failure to the first decodable frame again, ${scope}, p95`,
    value: x.p95,
    unit: 'ms',
    baseline: { name: `${LABEL[OTHER[c]]}, the same, p95`, value: sums[OTHER[c]].p95, unit: 'ms' },
    ratio: x.p95 / sums[OTHER[c]].p95,
    note: `p50 ${x.p50} ms, max ${x.max} ms over ${x.count} viewer-failovers in ${samples.rounds} events (${who}); ${samples.skipped} rounds skipped (tree not as needed). ${caseBreakdown(c, samples)}. ${samples.failures} never recovered. Target: p95 < 1000 ms. Lower is better.`,
  };
}

/** A case's samples by kind of viewer and by where it was (on the failed relay or below it). */
function caseBreakdown(c: Case, x: Samples): string {
  const f = (v: number[]) => {
    const y = summaryOf(v);
    return y.count ? `p50 ${y.p50} / p95 ${y.p95} ms (${y.count})` : '–';
  };
  return c.startsWith('inner')
    ? `werift viewers of the lost relay ${f(x.werift.lost)}, of its child relay ${f(x.werift.below)}; Chromium of the lost relay ${f(x.chromium.lost)}, of its child ${f(x.chromium.below)}`
    : `werift viewers of the lost leaf ${f(x.werift.lost)}; Chromium ${f(x.chromium.lost)}`;
}

/** A summary even of no samples (count 0, NaN figures): the details keep every case, whether it ran or not. */
function summaryOf(v: number[]): Summary {
  return summarize(v) ?? { count: 0, min: NaN, max: NaN, mean: NaN, p50: NaN, p95: NaN, p99: NaN };
}
