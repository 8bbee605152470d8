import { setTimeout as sleep } from 'node:timers/promises';
import { ViewerFleet, type FleetTotals, type SinkLaunch } from '../../ViewerFleet.js';
import { coreBusyShares, processCpuSeconds, readCoreTimes, type CoreTimes } from './procStat.js';
import { limitBreaches, nextStepSize, summarizeRamp, type RampLimits, type RampStep, type RampSummary, type StepPlan } from './ramp.js';
import type { RealTarget } from './RealTarget.js';
import { joinCostMs, windowMedia, type MediaWindow } from './realWindow.js';

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

/** One measured window at a number of viewers. */
export interface RealStep extends RampStep {
  /** `cpu` is procCpu + softirq + steal of the server core: all of it counts against the server. */
  procCpu: number;
  softirq: number;
  steal: number;
  /** Busy time of the server core that was none of the above (a neighbour's work). */
  coreOther: number;
  media: MediaWindow;
  /** Server CPU per join while this step's viewers joined, above the steady state (ms of CPU). */
  joinCpuMs: number | null;
  /** Wall time for this step's viewers to join (ms) and joins that failed in it. */
  addMs: number;
  joinFailures: number;
  /** CPU of the sink processes (share of one core) and how busy the load core was. */
  sinkCpu: number;
  loadCoreBusy: number;
  remeasured: boolean;
  breaches: string[];
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

interface Reading {
  t: number;
  serverCpu: number;
  sinkCpu: number;
  cores: CoreTimes[];
  fleet: FleetTotals;
}

/** Sinks above this share of the load core may start to lag: the ramp stops (a lower bound then). */
const SINK_CPU_LIMIT = 0.8;
/** A load core busier than this (others' jobs included) may have delayed the sinks: noted. */
const LOAD_CORE_BUSY_WARN = 0.95;
/** Sink socket drops above this share of the expected packets: the load generator is the limit. */
const SINK_DROPS_LIMIT = 0.001;
/** Joins of one step must settle within this long, plus their share of the join rate. */
const JOIN_GRACE_MS = 30_000;

/** One ramp against one server: start it, add sink viewers in steps until a limit stops it. */
export async function runRealRamp(o: RealRampOptions): Promise<RealRampRun> {
  const started = Date.now();
  let target: RealTarget | undefined;
  let fleet: ViewerFleet | undefined;
  const steps: RealStep[] = [];
  const notes: string[] = [];
  let idleCpu: number | null = null;
  let stopReason = 'error';
  let saturated = false;
  let lastTotals: FleetTotals | undefined;
  const failuresByCode: Record<string, number> = {};
  /** Steps (viewers) at which the load core was nearly full. */
  const busyLoadCore: number[] = [];
  try {
    target = await o.startTarget();
    const t = target;
    fleet = new ViewerFleet({
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
    await fleet.start();
    const f = fleet;

    const serverCpu = () => {
      let sum = 0;
      for (const pid of t.pids()) sum += processCpuSeconds(pid) ?? 0;
      return sum;
    };
    const read = async (): Promise<Reading> => {
      const fleetTotals = await f.snapshot();
      lastTotals = fleetTotals;
      return {
        t: performance.now(),
        serverCpu: serverCpu(),
        sinkCpu: f.pids.reduce((a, pid) => a + (processCpuSeconds(pid) ?? 0), 0),
        cores: readCoreTimes(),
        fleet: fleetTotals,
      };
    };
    const measure = async (viewers: number, extra: Pick<RealStep, 'joinCpuMs' | 'addMs' | 'joinFailures'>, remeasured: boolean): Promise<RealStep> => {
      const a = await read();
      await sleep(o.windowMs);
      const b = await read();
      const failure = t.failure();
      if (failure) throw new Error(failure);
      const sec = (b.t - a.t) / 1000;
      const shares = coreBusyShares(a.cores, b.cores)[o.serverCore] ?? { busy: 0, softirq: 0, steal: 0 };
      const procCpu = (b.serverCpu - a.serverCpu) / sec;
      const media = windowMedia(a.fleet, b.fleet, sec);
      const step: RealStep = {
        viewers,
        procCpu,
        softirq: shares.softirq,
        steal: shares.steal,
        cpu: procCpu + shares.softirq + shares.steal,
        coreOther: Math.max(0, shares.busy - procCpu - shares.softirq - shares.steal),
        loss: media.loss,
        media,
        passed: false,
        sinkCpu: (b.sinkCpu - a.sinkCpu) / sec,
        loadCoreBusy: coreBusyShares(a.cores, b.cores)[o.loadCore]?.busy ?? 0,
        remeasured,
        breaches: [],
        ...extra,
      };
      step.breaches = limitBreaches(step, o.limits);
      if (media.silentViewers > 0) step.breaches.push(`${media.silentViewers} of ${media.viewers} viewers received nothing`);
      step.passed = step.breaches.length === 0;
      return step;
    };

    await sleep(o.settleMs);
    const idle = await measure(0, { joinCpuMs: null, addMs: 0, joinFailures: 0 }, false);
    idleCpu = idle.cpu;
    const points = [{ viewers: 0, cpu: idle.cpu }];
    let viewers = 0;
    let steadyCpu = idle.cpu;
    for (;;) {
      if (Date.now() - started > o.budgetMs) {
        stopReason = `time budget (${Math.round(o.budgetMs / 1000)} s) used up at ${viewers} viewers`;
        break;
      }
      const step = nextStepSize(points, o.plan, o.limits);
      if (step <= 0) {
        stopReason = `reached the ramp's cap of ${o.plan.maxViewers} viewers`;
        break;
      }
      // The joins: the server's CPU above its steady state while they happen is their cost.
      const before = { t: performance.now(), cpu: serverCpu(), totals: f.totals() };
      f.add(step, o.joinRatePerSec);
      const want = viewers + step;
      const settleBy = Date.now() + JOIN_GRACE_MS + (step / o.joinRatePerSec) * 1000;
      let now = f.totals();
      while (now.connected + now.failed + now.lostViewers < want && Date.now() < settleBy) {
        await sleep(200);
        now = f.totals();
      }
      now = await f.snapshot();
      const addMs = performance.now() - before.t;
      const joinCpuSeconds = serverCpu() - before.cpu;
      const joinFailures = now.failed - before.totals.failed;
      viewers = want;
      const unsettled = want - (now.connected + now.failed + now.lostViewers);
      if (unsettled > 0) {
        stopReason = `${unsettled} of ${step} joins had not completed after ${Math.round(addMs / 1000)} s`;
        saturated = steps.some((s) => s.passed);
        break;
      }
      if (joinFailures > 0 || now.lostViewers > before.totals.lostViewers) {
        stopReason = `${joinFailures} of ${step} joins failed, ${now.lostViewers - before.totals.lostViewers} viewers dropped at ${viewers} viewers`;
        saturated = steps.some((s) => s.passed);
        break;
      }
      await sleep(o.settleMs);
      let sample = await measure(viewers, { joinCpuMs: null, addMs, joinFailures }, false);
      if (!sample.passed) {
        // One breach may be a neighbour's burst on a shared machine: measure once more before stopping.
        o.log(`[capacity] ${o.label} ${viewers} viewers: ${sample.breaches.join(', ')}; measuring again`);
        sample = await measure(viewers, { joinCpuMs: null, addMs, joinFailures }, true);
      }
      // The steady state grew from the last window's to this one's while the viewers arrived.
      const joinCpuMs = joinCostMs({ cpuSeconds: joinCpuSeconds, seconds: addMs / 1000, steadyCpu: (steadyCpu + sample.cpu) / 2, joins: step });
      sample.joinCpuMs = joinCpuMs;
      steps.push(sample);
      points.push({ viewers, cpu: sample.cpu });
      steadyCpu = sample.cpu;
      o.log(
        `[capacity] ${o.label} ${viewers} viewers: cpu ${(sample.cpu * 100).toFixed(1)} % (process ${(sample.procCpu * 100).toFixed(1)}, softirq ${(sample.softirq * 100).toFixed(1)}, steal ${(sample.steal * 100).toFixed(1)}), ` +
          `loss ${(sample.loss * 100).toFixed(2)} %, ${sample.media.ppsPerViewer.toFixed(0)} pkt/s and ${sample.media.kbpsPerViewer.toFixed(0)} kbit/s per viewer, ` +
          `join ${joinCpuMs === null ? '–' : joinCpuMs.toFixed(1)} ms CPU each, sinks ${(sample.sinkCpu * 100).toFixed(0)} %, load core ${(sample.loadCoreBusy * 100).toFixed(0)} %`,
      );
      if (!sample.passed) {
        stopReason = sample.breaches.join(', ');
        saturated = true;
        break;
      }
      if (sample.media.sinkDrops > SINK_DROPS_LIMIT * sample.media.expected) {
        stopReason = `the sinks' sockets dropped ${sample.media.sinkDrops} datagrams at ${viewers} viewers (the load generator fell behind)`;
        break;
      }
      if (sample.sinkCpu > SINK_CPU_LIMIT) {
        stopReason = `the sinks used ${(sample.sinkCpu * 100).toFixed(0)} % of the load core at ${viewers} viewers: beyond, the load generator would set the limit`;
        break;
      }
      if (sample.loadCoreBusy > LOAD_CORE_BUSY_WARN) busyLoadCore.push(viewers);
    }
  } catch (err) {
    stopReason = `error: ${(err as Error).message}`;
    if (steps.length === 0) throw err;
    notes.push(`${o.label}: ${stopReason}`);
  } finally {
    const result = await fleet?.stop().catch(() => undefined);
    await target?.close().catch(() => undefined);
    for (const v of result?.viewers ?? []) {
      if (v.error && v.error.code !== 'CASCADE_ERR_LOADTEST_NOT_STARTED') failuresByCode[v.error.code] = (failuresByCode[v.error.code] ?? 0) + 1;
    }
  }
  if (busyLoadCore.length > 0) {
    notes.push(
      `${o.label}: the load core was over ${LOAD_CORE_BUSY_WARN * 100} % busy at ${busyLoadCore.length} of ${steps.length} steps (${busyLoadCore.join(', ')} viewers), mostly not the sinks (see sinkCpuPct): delays at the sinks may have shown as loss`,
    );
  }
  const passedSteps = steps.filter((s) => s.passed);
  const fitSteps: RampStep[] = idleCpu !== null ? [{ viewers: 0, cpu: idleCpu, loss: 0, passed: true }, ...passedSteps] : passedSteps;
  const summary = summarizeRamp(fitSteps, o.limits, saturated);
  const joinH = lastTotals?.sink.joinMs;
  const dtlsH = lastTotals?.sink.dtlsMs;
  return {
    label: o.label,
    kind: target?.kind ?? 'unknown',
    steps,
    idleCpu,
    summary,
    stopReason,
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
