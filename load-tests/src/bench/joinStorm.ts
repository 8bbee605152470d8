import type { Browser } from 'playwright-core';
import { keyFrameRequestsSeen, launchChromium, startChromiumBroadcaster, startServer, type NodeProcess, type TestBroadcaster } from '@cascade/testing';
import { HostCpu } from '../HostCpu.js';
import type { ViewerResult } from '../LoadTestTypes.js';
import { summarize, type Summary } from '../stats.js';
import { ensureSink } from '../sink.js';
import { ViewerFleet, type SinkLaunch } from '../ViewerFleet.js';
import type { BenchContext, BenchFigure, BenchResult } from './types.js';

/** Machine busier than this during the storm: the figures describe the machine, not the server. */
const SATURATED_PCT = 85;
/** After the last join has resolved, time for its first frame to come. */
const SETTLE_MS = 5000;

interface Phase {
  viewers: ViewerResult[];
  /** Machine busy share (% of all cores) per second while the phase ran. */
  busy: number[];
  /** The viewer processes' CPU, % of one core, per sample. */
  generatorCpu: number[];
  stopReason: string;
  durationMs: number;
}

/**
 * `count` werift viewers joining the origin at `ratePerSec` (at most `inFlight` joins open at
 * once per process); ends when every join has resolved or failed and SETTLE_MS passed, or at
 * `budgetMs`, whichever first.
 */
async function runPhase(
  url: string,
  streamId: string,
  o: { count: number; ratePerSec: number; processes: number; inFlight: number; budgetMs: number; sink?: SinkLaunch },
): Promise<Phase> {
  const cpu = new HostCpu();
  const busy: number[] = [];
  const fleet = new ViewerFleet({
    url,
    streamId,
    viewers: o.count,
    processes: o.processes,
    rampPerSec: o.ratePerSec,
    durationMs: o.budgetMs,
    stamped: false,
    freezeGapMs: 500,
    joinTimeoutMs: 15_000,
    maxInFlightPerProcess: o.inFlight,
    ...(o.sink ? { sink: o.sink } : {}),
  });
  const started = Date.now();
  let stopReason = `time budget of ${o.budgetMs / 1000} s reached`;
  let doneAt: number | undefined;
  let result: Awaited<ReturnType<ViewerFleet['stop']>>;
  try {
    await fleet.start();
    cpu.sample();
    while (Date.now() - started < o.budgetMs) {
      await new Promise((res) => setTimeout(res, 1000));
      const load = cpu.sample();
      if (load !== null) busy.push(load);
      const s = fleet.sample();
      if (doneAt === undefined && s.joined + s.failed >= o.count) doneAt = Date.now();
      if (doneAt !== undefined && Date.now() - doneAt >= SETTLE_MS) {
        stopReason = `all ${o.count} joins resolved or failed, then ${SETTLE_MS / 1000} s for first frames`;
        break;
      }
    }
  } finally {
    result = await fleet.stop();
  }
  return {
    viewers: result.viewers,
    busy,
    generatorCpu: result.generator.flatMap((g) => g.samples.map((x) => x.cpuPct)),
    stopReason,
    durationMs: Date.now() - started,
  };
}

const EMPTY: Summary = { count: 0, min: NaN, max: NaN, mean: NaN, p50: NaN, p95: NaN, p99: NaN };
const s = (v: number[]): Summary => summarize(v) ?? EMPTY;
const firstFrames = (p: Phase) => p.viewers.flatMap((v) => (v.firstFrameMs !== null ? [v.firstFrameMs] : []));
const joins = (p: Phase) => p.viewers.flatMap((v) => (v.joinMs !== null ? [v.joinMs] : []));
/** Viewers that never showed a frame, or whose processes gave no results. */
const failures = (p: Phase, count: number) => count - firstFrames(p).length;

/** The run's size: viewers in the storm and its rate, joins one at a time. */
interface Plan {
  storm: number;
  rate: number;
  solo: number;
}

/** The phases' results: one at a time, the werift storm, the load-sink storm (if the sink could be built). */
interface Phases {
  one: Phase;
  many: Phase;
  cheap: Phase | undefined;
  /** Key frame requests the broadcaster received during the werift storm, per layer. */
  requests: Record<string, number>;
}

/** The summaries the figures are made of. */
interface Sums {
  ffSolo: Summary;
  ffStorm: Summary;
  joinSolo: Summary;
  joinStorm: Summary;
  busy: Summary;
  gen: Summary;
  ffSink: Summary;
  sinkBusy: Summary;
  failed: { solo: number; storm: number; sinkStorm?: number };
}

/**
 * The join storm of issue 17: `storm` werift viewers joining the origin at 25/s against the
 * same viewers' first frame one at a time, in the same run, with a simulcast Chromium
 * broadcaster. Per viewer: watch() to its first complete video frame (a viewer starts on the
 * lowest layer, so that is its first key frame), and watch() to resolved. The machine's load
 * during the storm is reported: werift viewers cost CPU on the same two cores, and a saturated
 * machine measures itself. Key frame requests the broadcaster received during the storm, per
 * layer, show the throttle at work.
 */
export async function runJoinStormBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const full = ctx.scale === 'full';
  const plan: Plan = { storm: full ? 200 : 30, rate: 25, solo: full ? 20 : 5 };
  const warnings: string[] = [];
  let origin: NodeProcess | undefined;
  let browser: Browser | undefined;
  let b: TestBroadcaster | undefined;
  let phases: Phases;
  try {
    origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: String(plan.storm + plan.solo + 20), CASCADE_LOG_LEVEL: 'warn' } });
    browser = await launchChromium();
    b = await startChromiumBroadcaster(origin.url, browser);
    await new Promise((res) => setTimeout(res, 2000));
    const one = await soloPhase(ctx, plan, origin.url, b.streamId);
    await new Promise((res) => setTimeout(res, 2000));
    const { many, requests } = await stormPhase(ctx, plan, origin.url, b);
    // The same storm with the Go load sink (a WebRTC viewer at a fraction of werift's CPU): the
    // server's figure with the load generator below saturation, where werift saturates this machine.
    await new Promise((res) => setTimeout(res, 3000));
    const cheap = await sinkStormPhase(ctx, plan, origin.url, b.streamId, warnings);
    phases = { one, many, cheap, requests };
  } finally {
    await b?.stop();
    await browser?.close();
    await origin?.stop();
  }
  return joinStormResult(plan, phases, warnings, started);
}

/** One at a time: the next join starts ~1.2 s after the previous one began, alone on the machine. */
async function soloPhase(ctx: BenchContext, plan: Plan, url: string, streamId: string): Promise<Phase> {
  const { solo } = plan;
  ctx.log(`one at a time: ${solo} joins`);
  const one = await runPhase(url, streamId, { count: solo, ratePerSec: 0.8, processes: 1, inFlight: 1, budgetMs: solo * 1250 + 30_000 });
  ctx.log(`one at a time: ${one.stopReason}; first frame p50 ${s(firstFrames(one)).p50} ms`);
  return one;
}

/** The werift storm, and the key frame requests the broadcaster received during it (per layer: the throttle at work). */
async function stormPhase(ctx: BenchContext, plan: Plan, url: string, b: TestBroadcaster): Promise<{ many: Phase; requests: Record<string, number> }> {
  const { storm, rate } = plan;
  const before = await keyFrameRequestsSeen(b.page);
  ctx.log(`storm: ${storm} joins at ${rate}/s`);
  const many = await runPhase(url, b.streamId, { count: storm, ratePerSec: rate, processes: Math.max(1, Math.ceil(storm / 100)), inFlight: 64, budgetMs: (storm / rate) * 1000 + 60_000 });
  const after = await keyFrameRequestsSeen(b.page);
  const requests = Object.fromEntries(Object.entries(after).map(([rid, n]) => [rid, n - (before[rid] ?? 0)]));
  ctx.log(`storm: ${many.stopReason}; first frame p50 ${s(firstFrames(many)).p50} p95 ${s(firstFrames(many)).p95} ms; key frame requests ${JSON.stringify(requests)}`);
  return { many, requests };
}

/** The same storm with the Go load sink; none (and a warning) when the sink cannot be built. */
async function sinkStormPhase(ctx: BenchContext, plan: Plan, url: string, streamId: string, warnings: string[]): Promise<Phase | undefined> {
  const { storm, rate } = plan;
  const bin = await ensureSink().catch((err: unknown) => {
    warnings.push(`no storm with the load sink: ${(err as Error).message}`);
    return undefined;
  });
  if (!bin) return undefined;
  ctx.log(`storm with the load sink: ${storm} joins at ${rate}/s`);
  const cheap = await runPhase(url, streamId, { count: storm, ratePerSec: rate, processes: 1, inFlight: 64, budgetMs: (storm / rate) * 1000 + 60_000, sink: { bin, config: { twcc: true } } });
  ctx.log(`storm with the load sink: ${cheap.stopReason}; first frame p50 ${s(firstFrames(cheap)).p50} p95 ${s(firstFrames(cheap)).p95} ms; machine p50 ${s(cheap.busy).p50?.toFixed(0)} %`);
  return cheap;
}

/** First frames and joins per phase, the machine's load, the viewers that showed nothing; throws without first frames. */
function summarizePhases(plan: Plan, phases: Phases): Sums {
  const { one, many, cheap } = phases;
  const ffSolo = s(firstFrames(one));
  const ffStorm = s(firstFrames(many));
  const joinSolo = s(joins(one));
  const joinStorm = s(joins(many));
  if (ffSolo.count === 0 || ffStorm.count === 0) throw new Error('join storm bench: no first frames');
  return {
    ffSolo,
    ffStorm,
    joinSolo,
    joinStorm,
    busy: s(many.busy),
    gen: s(many.generatorCpu),
    ffSink: cheap ? s(firstFrames(cheap)) : EMPTY,
    sinkBusy: cheap ? s(cheap.busy) : EMPTY,
    failed: { solo: failures(one, plan.solo), storm: failures(many, plan.storm), ...(cheap ? { sinkStorm: failures(cheap, plan.storm) } : {}) },
  };
}

/** The figures (the load-sink storm first, when it ran), the warnings, and the summaries behind them. */
function joinStormResult(plan: Plan, phases: Phases, warnings: string[], started: number): BenchResult {
  const { storm, rate } = plan;
  const { one, many, cheap, requests } = phases;
  const x = summarizePhases(plan, phases);
  const { ffSolo, ffStorm, joinSolo, joinStorm, busy, gen, ffSink, sinkBusy, failed } = x;
  if (cheap && failed.sinkStorm! > 0) warnings.push(`${failed.sinkStorm} load-sink storm viewers showed no frame (counted as failures, not in the percentiles)`);
  if (failed.storm + failed.solo > 0) warnings.push(`${failed.storm} storm viewers and ${failed.solo} single joins showed no frame (counted as failures, not in the percentiles)`);
  if (busy.max > SATURATED_PCT) warnings.push(`machine ${busy.max.toFixed(0)} % busy at the storm's peak (p50 ${busy.p50.toFixed(0)} %): the load generator shares the two cores; above ~${SATURATED_PCT} % the figures describe the machine`);
  return {
    id: 'joinStorm',
    title: `Join storm: ${storm} viewers at ${rate}/s, first frame`,
    figures: [...(cheap && ffSink.count > 0 ? [sinkStormFigure(plan, x, cheap)] : []), ...stormFigures(plan, x, phases)],
    details: {
      firstFrame: { storm: ffStorm, solo: ffSolo },
      join: { storm: joinStorm, solo: joinSolo },
      failures: failed,
      ...(cheap ? { sinkStorm: { firstFrame: ffSink, join: s(joins(cheap)), machineBusyPercent: sinkBusy, stopReason: cheap.stopReason } } : {}),
      machineBusyPercent: busy,
      generatorCpuPercentOfCore: gen,
      keyFrameRequestsPerLayer: requests,
      stopReason: { storm: many.stopReason, solo: one.stopReason },
      phaseMs: { storm: many.durationMs, solo: one.durationMs },
    },
    warnings,
    durationMs: Date.now() - started,
  };
}

/** The server's figure with the load generator below saturation: the load-sink storm against one werift join at a time. */
function sinkStormFigure(plan: Plan, x: Sums, cheap: Phase): BenchFigure {
  const { storm, rate } = plan;
  const { ffSink, ffSolo, sinkBusy, failed } = x;
  return {
    name: `join storm (${storm} at ${rate}/s), load-sink viewers: watch to first frame, p95`,
    value: ffSink.p95,
    unit: 'ms',
    baseline: { name: 'one werift join at a time, p95', value: ffSolo.p95, unit: 'ms' },
    ratio: ffSink.p95 / ffSolo.p95,
    note: `The same storm with the Go load sink (real ICE, DTLS-SRTP, RTCP, transport-cc; about 0.05 % of a core per viewer) instead of werift: ${ffSink.count} first frames, ${failed.sinkStorm} failures; p50 ${ffSink.p50} ms, max ${ffSink.max} ms. Machine busy during it p50 ${sinkBusy.p50?.toFixed?.(0)} %, max ${sinkBusy.max?.toFixed?.(0)} %. Stop: ${cheap.stopReason}. Target: p95 < 500 ms with the load generator below saturation. Lower is better.`,
  };
}

/** The werift storm against one join at a time: p95 (with the machine's load beside it), then p50. */
function stormFigures(plan: Plan, x: Sums, phases: Phases): BenchFigure[] {
  const { storm, rate, solo } = plan;
  const { ffSolo, ffStorm, joinSolo, joinStorm, busy, gen, failed } = x;
  const stormNote = `${storm} werift viewers at ${rate}/s on the origin (${ffStorm.count} first frames, ${failed.storm} failures); one at a time: ${solo} joins ~1.25 s apart (${ffSolo.count} first frames). Machine busy during the storm p50 ${busy.p50.toFixed(0)} %, max ${busy.max.toFixed(0)} % of all cores; load generator p50 ${gen.p50?.toFixed?.(0)} % of a core per process. Key frame requests the broadcaster received during the storm, per layer: ${JSON.stringify(phases.requests)}. Stop: ${phases.many.stopReason}.`;
  return [
    {
      name: `join storm (${storm} at ${rate}/s): watch() to first frame, p95`,
      value: ffStorm.p95,
      unit: 'ms',
      baseline: { name: 'one join at a time, p95', value: ffSolo.p95, unit: 'ms' },
      ratio: ffStorm.p95 / ffSolo.p95,
      note: `${stormNote} Target: p95 < 500 ms with the load generator below saturation. Lower is better.`,
    },
    {
      name: `join storm (${storm} at ${rate}/s): watch() to first frame, p50`,
      value: ffStorm.p50,
      unit: 'ms',
      baseline: { name: 'one join at a time, p50', value: ffSolo.p50, unit: 'ms' },
      ratio: ffStorm.p50 / ffSolo.p50,
      note: `Max ${ffStorm.max} ms in the storm, ${ffSolo.max} ms one at a time. watch() resolved: storm p50 ${joinStorm.p50} / p95 ${joinStorm.p95} ms, one at a time p50 ${joinSolo.p50} / p95 ${joinSolo.p95} ms.`,
    },
  ];
}
