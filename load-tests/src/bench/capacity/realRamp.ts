import { setTimeout as sleep } from 'node:timers/promises';
import { ViewerFleet, type SinkLaunch } from '../../ViewerFleet.js';
import { nextStepSize, summarizeRamp, type RampLimits, type RampStep, type RampSummary, type StepPlan } from './ramp.js';
import type { RealTarget } from './RealTarget.js';
import { joinCostMs } from './realWindow.js';
import { StepMeter, type RealStep } from './StepMeter.js';

export interface RealRampOptions {
  /** Label for logs and the report, e.g. "cascade 500 kbit/s #2". */
  label: string;
  startTarget: () => Promise<RealTarget>;
  sinkBin: string;
  /** Extra sink settings (ping period, TWCC, SRTP profiles, poll interval). */
  sinkConfig: NonNullable<SinkLaunch['config']>;
  sinkProcesses: number;
  /** Core the server is pinned to; the sinks (and feeds) run on loadCore. */
  serverCore: number;
  loadCore: number;
  limits: RampLimits;
  plan: StepPlan;
  /** Joins per second while a step's viewers join. */
  joinRatePerSec: number;
  /** After the joins, before measuring (ms): a new consumer waits for a key frame (≤ 1 s GOP). */
  settleMs: number;
  /** Measurement window (ms). */
  windowMs: number;
  /** The ramp stops adding viewers after this long (ms): its figure is then a lower bound. */
  budgetMs: number;
  log: (line: string) => void;
}

export interface RealRampRun {
  label: string;
  kind: string;
  steps: RealStep[];
  /** The 0-viewer window: the server receiving the stream, forwarding it nowhere. */
  idleCpu: number | null;
  summary: RampSummary;
  /** Why the ramp ended (every ramp has one). */
  stopReason: string;
  target: Record<string, unknown>;
  /** Joins: request → DTLS connected and the DTLS handshake alone, over the ramp (ms). */
  join: { p50: number | null; p95: number | null; dtlsP50: number | null; count: number };
  failuresByCode: Record<string, number>;
  durationMs: number;
  notes: string[];
}

/** Sinks above this share of the load core may start to lag: the ramp stops (a lower bound then). */
const SINK_CPU_LIMIT = 0.8;
/** A load core busier than this (others' jobs included) may have delayed the sinks: noted. */
const LOAD_CORE_BUSY_WARN = 0.95;
/** Sink socket drops above this share of the expected packets: the load generator is the limit. */
const SINK_DROPS_LIMIT = 0.001;
/** Joins of one step must settle within this long, plus their share of the join rate. */
const JOIN_GRACE_MS = 30_000;

/** What a ramp gathers as it runs, kept apart from its phases so that an error midway still reports what came before. */
interface RampState {
  target?: RealTarget;
  fleet?: ViewerFleet;
  meter?: StepMeter;
  steps: RealStep[];
  /** The 0-viewer window's CPU: the server receiving the stream, forwarding it nowhere. */
  idleCpu: number | null;
  notes: string[];
  /** Steps (viewers) at which the load core was nearly full. */
  busyLoadCore: number[];
  failuresByCode: Record<string, number>;
}

/** Why a ramp ended, and whether the server had reached a limit (else its figure is a lower bound). */
interface RampOutcome {
  stopReason: string;
  saturated: boolean;
}

/** What adding one step's viewers took. */
interface Joins {
  /** Wall time until they settled (ms), and the server's CPU seconds meanwhile. */
  addMs: number;
  cpuSeconds: number;
  failures: number;
  /** Viewers lost meanwhile (the fleet's lostViewers). */
  dropped: number;
  /** Joins neither connected nor failed when the grace period ended. */
  unsettled: number;
}

/** One ramp against one server: start it, add sink viewers in steps until a limit stops it. */
export async function runRealRamp(o: RealRampOptions): Promise<RealRampRun> {
  const started = Date.now();
  const r: RampState = { steps: [], idleCpu: null, notes: [], busyLoadCore: [], failuresByCode: {} };
  let outcome: RampOutcome;
  try {
    r.target = await o.startTarget();
    r.fleet = viewerFleet(o, r.target);
    await r.fleet.start();
    r.meter = new StepMeter(o, r.target, r.fleet);
    // The idle window (no viewers yet): the CPU fit's first point and the first steady state.
    await sleep(o.settleMs);
    r.idleCpu = (await r.meter.measure(0, { joinCpuMs: null, addMs: 0, joinFailures: 0 }, false)).cpu;
    outcome = await rampUp(o, started, r.fleet, r.meter, r);
  } catch (err) {
    outcome = { stopReason: `error: ${(err as Error).message}`, saturated: false };
    if (r.steps.length === 0) throw err;
    r.notes.push(`${o.label}: ${outcome.stopReason}`);
  } finally {
    r.failuresByCode = await stopRamp(r.fleet, r.target);
  }
  return rampResult(o, started, r, outcome);
}

/** The sink viewers, none yet: each step adds its own at the join rate. */
function viewerFleet(o: RealRampOptions, t: RealTarget): ViewerFleet {
  return new ViewerFleet({
    url: t.join.url,
    streamId: t.join.streamId,
    viewers: 0,
    processes: o.sinkProcesses,
    rampPerSec: o.joinRatePerSec,
    durationMs: o.budgetMs + 600_000,
    stamped: false,
    freezeGapMs: 500,
    joinTimeoutMs: 20_000,
    maxInFlightPerProcess: 64,
    sink: { bin: o.sinkBin, cores: String(o.loadCore), config: { ...o.sinkConfig, server: t.join.server } },
  });
}

/**
 * Adds viewers step by step, each step measured once settled, until a limit, the joins, the load
 * generator, the cap or the time budget stops the ramp. Measured steps go into `r.steps` as they
 * come, so that an error keeps them.
 */
async function rampUp(o: RealRampOptions, started: number, f: ViewerFleet, meter: StepMeter, r: RampState): Promise<RampOutcome> {
  const points = [{ viewers: 0, cpu: r.idleCpu! }];
  let viewers = 0;
  let steadyCpu = r.idleCpu!;
  for (;;) {
    if (Date.now() - started > o.budgetMs) return { stopReason: `time budget (${Math.round(o.budgetMs / 1000)} s) used up at ${viewers} viewers`, saturated: false };
    const step = nextStepSize(points, o.plan, o.limits);
    if (step <= 0) return { stopReason: `reached the ramp's cap of ${o.plan.maxViewers} viewers`, saturated: false };
    const joins = await addViewers(o, f, meter, viewers + step, step);
    viewers += step;
    const joinTrouble = joinStop(joins, step, viewers);
    if (joinTrouble) return { stopReason: joinTrouble, saturated: r.steps.some((s) => s.passed) };
    const sample = await measureStep(o, meter, viewers, joins);
    // The steady state grew from the last window's to this one's while the viewers arrived.
    sample.joinCpuMs = joinCostMs({ cpuSeconds: joins.cpuSeconds, seconds: joins.addMs / 1000, steadyCpu: (steadyCpu + sample.cpu) / 2, joins: step });
    r.steps.push(sample);
    points.push({ viewers, cpu: sample.cpu });
    steadyCpu = sample.cpu;
    logStep(o, viewers, sample);
    const stop = stepStop(sample, viewers);
    if (stop) return stop;
    if (sample.loadCoreBusy > LOAD_CORE_BUSY_WARN) r.busyLoadCore.push(viewers);
  }
}

/** Adds one step's viewers and waits until `want` have connected or failed (or the grace period ends). */
async function addViewers(o: RealRampOptions, f: ViewerFleet, meter: StepMeter, want: number, step: number): Promise<Joins> {
  // The joins: the server's CPU above its steady state while they happen is their cost.
  const before = { t: performance.now(), cpu: meter.serverCpu(), totals: f.totals() };
  f.add(step, o.joinRatePerSec);
  const settleBy = Date.now() + JOIN_GRACE_MS + (step / o.joinRatePerSec) * 1000;
  let now = f.totals();
  while (now.connected + now.failed + now.lostViewers < want && Date.now() < settleBy) {
    await sleep(200);
    now = f.totals();
  }
  now = await f.snapshot();
  const addMs = performance.now() - before.t;
  const cpuSeconds = meter.serverCpu() - before.cpu;
  return {
    addMs,
    cpuSeconds,
    failures: now.failed - before.totals.failed,
    dropped: now.lostViewers - before.totals.lostViewers,
    unsettled: want - (now.connected + now.failed + now.lostViewers),
  };
}

/** Why a step's joins end the ramp (some never settled, some failed, viewers dropped), or null. */
function joinStop(j: Joins, step: number, viewers: number): string | null {
  if (j.unsettled > 0) return `${j.unsettled} of ${step} joins had not completed after ${Math.round(j.addMs / 1000)} s`;
  if (j.failures > 0 || j.dropped > 0) return `${j.failures} of ${step} joins failed, ${j.dropped} viewers dropped at ${viewers} viewers`;
  return null;
}

/** Lets the new consumers get their key frame, then measures the step; a breach is measured once more before it counts. */
async function measureStep(o: RealRampOptions, meter: StepMeter, viewers: number, j: Joins): Promise<RealStep> {
  await sleep(o.settleMs);
  let sample = await meter.measure(viewers, { joinCpuMs: null, addMs: j.addMs, joinFailures: j.failures }, false);
  if (!sample.passed) {
    // One breach may be a neighbour's burst on a shared machine: measure once more before stopping.
    o.log(`[capacity] ${o.label} ${viewers} viewers: ${sample.breaches.join(', ')}; measuring again`);
    sample = await meter.measure(viewers, { joinCpuMs: null, addMs: j.addMs, joinFailures: j.failures }, true);
  }
  return sample;
}

/** The step's line in the log: the server's CPU by part, what the viewers received, the joins' cost, the load side. */
function logStep(o: RealRampOptions, viewers: number, sample: RealStep): void {
  const joinCpuMs = sample.joinCpuMs;
  o.log(
    `[capacity] ${o.label} ${viewers} viewers: cpu ${(sample.cpu * 100).toFixed(1)} % (process ${(sample.procCpu * 100).toFixed(1)}, softirq ${(sample.softirq * 100).toFixed(1)}, steal ${(sample.steal * 100).toFixed(1)}), ` +
      `loss ${(sample.loss * 100).toFixed(2)} %, ${sample.media.ppsPerViewer.toFixed(0)} pkt/s and ${sample.media.kbpsPerViewer.toFixed(0)} kbit/s per viewer, ` +
      `join ${joinCpuMs === null ? '–' : joinCpuMs.toFixed(1)} ms CPU each, sinks ${(sample.sinkCpu * 100).toFixed(0)} %, load core ${(sample.loadCoreBusy * 100).toFixed(0)} %`,
  );
}

/** Why a measured step ends the ramp: a limit breached (the server saturated), or the load generator at its own limit; null to go on. */
function stepStop(sample: RealStep, viewers: number): RampOutcome | null {
  if (!sample.passed) return { stopReason: sample.breaches.join(', '), saturated: true };
  if (sample.media.sinkDrops > SINK_DROPS_LIMIT * sample.media.expected) {
    return { stopReason: `the sinks' sockets dropped ${sample.media.sinkDrops} datagrams at ${viewers} viewers (the load generator fell behind)`, saturated: false };
  }
  if (sample.sinkCpu > SINK_CPU_LIMIT) {
    return { stopReason: `the sinks used ${(sample.sinkCpu * 100).toFixed(0)} % of the load core at ${viewers} viewers: beyond, the load generator would set the limit`, saturated: false };
  }
  return null;
}

/** Stops the viewers and the server, whatever happened; the viewers' failures by error code (viewers never started aside). */
async function stopRamp(fleet: ViewerFleet | undefined, target: RealTarget | undefined): Promise<Record<string, number>> {
  const failuresByCode: Record<string, number> = {};
  const result = await fleet?.stop().catch(() => undefined);
  await target?.close().catch(() => undefined);
  for (const v of result?.viewers ?? []) {
    if (v.error && v.error.code !== 'CASCADE_ERR_LOADTEST_NOT_STARTED') failuresByCode[v.error.code] = (failuresByCode[v.error.code] ?? 0) + 1;
  }
  return failuresByCode;
}

/** The ramp's record: its steps, the CPU fit over the passing ones (the idle window first), why it stopped, the join times. */
function rampResult(o: RealRampOptions, started: number, r: RampState, outcome: RampOutcome): RealRampRun {
  const { steps, idleCpu, notes, busyLoadCore, target, failuresByCode } = r;
  if (busyLoadCore.length > 0) {
    notes.push(
      `${o.label}: the load core was over ${LOAD_CORE_BUSY_WARN * 100} % busy at ${busyLoadCore.length} of ${steps.length} steps (${busyLoadCore.join(', ')} viewers), mostly not the sinks (see sinkCpuPct): delays at the sinks may have shown as loss`,
    );
  }
  const passedSteps = steps.filter((s) => s.passed);
  const fitSteps: RampStep[] = idleCpu !== null ? [{ viewers: 0, cpu: idleCpu, loss: 0, passed: true }, ...passedSteps] : passedSteps;
  const summary = summarizeRamp(fitSteps, o.limits, outcome.saturated);
  const lastTotals = r.meter?.lastTotals;
  const joinH = lastTotals?.sink.joinMs;
  const dtlsH = lastTotals?.sink.dtlsMs;
  return {
    label: o.label,
    kind: target?.kind ?? 'unknown',
    steps,
    idleCpu,
    summary,
    stopReason: outcome.stopReason,
    target: target?.info() ?? {},
    join: {
      p50: joinH?.count ? joinH.percentile(50) : null,
      p95: joinH?.count ? joinH.percentile(95) : null,
      dtlsP50: dtlsH?.count ? dtlsH.percentile(50) : null,
      count: joinH?.count ?? 0,
    },
    failuresByCode,
    durationMs: Date.now() - started,
    notes,
  };
}
