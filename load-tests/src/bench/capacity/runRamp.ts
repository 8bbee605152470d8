import { setTimeout as sleep } from 'node:timers/promises';
import { FfmpegFeed } from './ffmpegFeed.js';
import { coreBusyShares, processCpuSeconds, readCoreTimes, readUdpDrops } from './procStat.js';
import {
  limitBreaches,
  nextStepSize,
  summarizeRamp,
  windowLoss,
  type RampLimits,
  type RampStep,
  type RampSummary,
  type StepPlan,
} from './ramp.js';
import type { SfuTarget } from './SfuTarget.js';
import { UdpSinkPool } from './udpSink.js';

export interface RampOptions {
  /** Label for logs and the report, e.g. "mediasoup #2". */
  label: string;
  startTarget: () => Promise<SfuTarget>;
  sinkBin: string;
  clip: string;
  /** Core the SFU is pinned to. */
  sfuCore: number;
  /** Core of the sinks and ffmpeg. */
  loadCore: number;
  limits: RampLimits;
  plan: StepPlan;
  /** After adding viewers, before measuring (ms): covers a mediasoup consumer's wait for a key frame (≤ 1 s GOP). */
  settleMs: number;
  /** Measurement window (ms). */
  windowMs: number;
  /** The ramp stops adding viewers after this long (ms), a lower bound then. */
  budgetMs: number;
  /** Every process this ramp starts exits by itself after this long. */
  deadlineSec: number;
  log: (line: string) => void;
}

/** One measured window at a given number of viewers. */
export interface StepSample extends RampStep {
  /** Loss from sequence gaps and silent sockets, before taking out sink-socket drops. */
  rawLoss: number;
  expected: number;
  lost: number;
  silentSockets: number;
  /** Datagrams the kernel dropped at full sink sockets (the sinks were too slow, not the SFU). */
  sinkDrops: number;
  /** Datagrams dropped at the SFU's ingress socket (the SFU did not read in time). */
  ingressDrops: number;
  /** Packets per second per viewer received by the sinks. */
  ppsPerViewer: number;
  /** Busy share of the SFU core, of which `sfuCoreOther` was not the SFU process. */
  sfuCoreBusy: number;
  sfuCoreOther: number;
  sfuCoreSoftirq: number;
  loadCoreBusy: number;
  /** CPU of the sink processes, share of one core. */
  sinkCpu: number;
  /** ms to add this step's viewers. */
  addMs: number;
  /** The first window breached a limit and this is the confirming second window. */
  remeasured: boolean;
  breaches: string[];
}

export interface RampRun {
  label: string;
  kind: string;
  steps: StepSample[];
  /** The 0-viewer window: the SFU receiving the stream and forwarding it nowhere. */
  idle: { cpu: number; ingressDrops: number } | null;
  summary: RampSummary;
  stopReason: string;
  target: Record<string, unknown>;
  durationMs: number;
  /** Things that weaken this ramp's figure. */
  notes: string[];
}

interface Reading {
  t: number;
  sfuCpu: number;
  sinkCpu: number;
  cores: ReturnType<typeof readCoreTimes>;
  drops: Map<number, number>;
  sinks: Awaited<ReturnType<UdpSinkPool['snapshot']>>;
}

const SINK_SOCKETS_PER_PROCESS = 2000;
/** Wait after ffmpeg starts before the first window. */
const WARMUP_MS = 1500;
/** A load core busier than this may have delayed the sinks: the report says so. */
const LOAD_CORE_WARN = 0.9;

/** One ramp against one SFU: start it, feed it, add viewers in steps until a limit. */
export async function runRamp(o: RampOptions): Promise<RampRun> {
  const started = Date.now();
  const sinks = new UdpSinkPool({ bin: o.sinkBin, core: o.loadCore, socketsPerProcess: SINK_SOCKETS_PER_PROCESS, deadlineSec: o.deadlineSec });
  let target: SfuTarget | undefined;
  let feed: FfmpegFeed | undefined;
  const steps: StepSample[] = [];
  const notes: string[] = [];
  let idle: RampRun['idle'] = null;
  /** Steps (viewers) at which the load core was nearly full. */
  const busyLoadCore: number[] = [];
  let stopReason = 'error';
  let saturated = false;
  try {
    target = await o.startTarget();
    const sfu = target;
    feed = new FfmpegFeed({ clip: o.clip, port: sfu.ingress.port, rtcpPort: sfu.ingress.rtcpPort, core: o.loadCore, maxSec: o.deadlineSec });
    await sleep(WARMUP_MS);
    if (feed.failure) throw new Error(feed.failure);

    const read = async (): Promise<Reading> => {
      const snap = await sinks.snapshot();
      const ports = new Set([...sinks.ports, sfu.ingress.port]);
      const sfuCpu = processCpuSeconds(sfu.pid);
      if (sfuCpu === null) throw new Error(`${sfu.kind} process ${sfu.pid} is gone`);
      return {
        t: performance.now(),
        sfuCpu,
        sinkCpu: sinks.pids.reduce((a, pid) => a + (processCpuSeconds(pid) ?? 0), 0),
        cores: readCoreTimes(),
        drops: readUdpDrops(ports),
        sinks: snap,
      };
    };
    const measure = async (viewers: number, addMs: number, remeasured: boolean): Promise<StepSample> => {
      const a = await read();
      await sleep(o.windowMs);
      const b = await read();
      if (feed!.failure) throw new Error(feed!.failure);
      const sec = (b.t - a.t) / 1000;
      const w = windowLoss(a.sinks, b.sinks);
      let sinkDrops = 0;
      for (const port of sinks.ports) sinkDrops += (b.drops.get(port) ?? 0) - (a.drops.get(port) ?? 0);
      const ingressDrops = (b.drops.get(sfu.ingress.port) ?? 0) - (a.drops.get(sfu.ingress.port) ?? 0);
      const shares = coreBusyShares(a.cores, b.cores);
      const cpu = (b.sfuCpu - a.sfuCpu) / sec;
      const lostBySfu = Math.max(0, w.lost - sinkDrops);
      const loss = w.expected > 0 ? lostBySfu / w.expected : 0;
      const sample: StepSample = {
        viewers,
        cpu,
        loss,
        passed: false,
        rawLoss: w.loss,
        expected: w.expected,
        lost: w.lost,
        silentSockets: w.silent,
        sinkDrops,
        ingressDrops,
        ppsPerViewer: w.sockets > 0 ? w.received / w.sockets / sec : 0,
        sfuCoreBusy: shares[o.sfuCore]?.busy ?? 0,
        sfuCoreOther: Math.max(0, (shares[o.sfuCore]?.busy ?? 0) - cpu),
        sfuCoreSoftirq: shares[o.sfuCore]?.softirq ?? 0,
        loadCoreBusy: shares[o.loadCore]?.busy ?? 0,
        sinkCpu: (b.sinkCpu - a.sinkCpu) / sec,
        addMs,
        remeasured,
        breaches: [],
      };
      sample.breaches = limitBreaches(sample, o.limits);
      sample.passed = sample.breaches.length === 0;
      return sample;
    };

    const idleSample = await measure(0, 0, false);
    idle = { cpu: idleSample.cpu, ingressDrops: idleSample.ingressDrops };
    const points = [{ viewers: 0, cpu: idleSample.cpu }];
    let viewers = 0;
    for (;;) {
      if (Date.now() - started > o.budgetMs) {
        stopReason = `time budget (${Math.round(o.budgetMs / 1000)} s) used up`;
        break;
      }
      const step = nextStepSize(points, o.plan, o.limits);
      if (step <= 0) {
        stopReason = `reached the ramp's cap of ${o.plan.maxViewers} viewers`;
        break;
      }
      const t0 = Date.now();
      const ports = await sinks.open(step);
      try {
        await sfu.addViewers(ports);
      } catch (err) {
        // A saturated SFU answers its control requests late: after a passing step, that ends the ramp.
        if (!steps.some((st) => st.passed)) throw err;
        stopReason = `could not add viewers beyond ${viewers} (${(err as Error).message})`;
        notes.push(`${o.label}: ${stopReason}; counted as saturation`);
        saturated = true;
        break;
      }
      viewers += step;
      const addMs = Date.now() - t0;
      await sleep(o.settleMs);
      let sample = await measure(viewers, addMs, false);
      if (sample.ppsPerViewer === 0 && steps.length === 0) {
        throw new Error(`${sfu.kind}: no media reached the sinks (ingress ${sfu.ingress.port}, ingress drops ${sample.ingressDrops})`);
      }
      if (!sample.passed) {
        // One breach may be a neighbour's burst on a shared machine: measure once more before stopping.
        o.log(`[capacity] ${o.label} ${viewers} viewers: ${sample.breaches.join(', ')}; measuring again`);
        sample = await measure(viewers, addMs, true);
      }
      steps.push(sample);
      points.push({ viewers, cpu: sample.cpu });
      o.log(
        `[capacity] ${o.label} ${viewers} viewers: cpu ${(sample.cpu * 100).toFixed(1)} %, loss ${(sample.loss * 100).toFixed(2)} %` +
          ` (sinks ${(sample.sinkCpu * 100).toFixed(0)} %, load core ${(sample.loadCoreBusy * 100).toFixed(0)} %,` +
          ` other on SFU core ${(sample.sfuCoreOther * 100).toFixed(0)} %, ${sample.ppsPerViewer.toFixed(0)} pkt/s/viewer)`,
      );
      if (sample.loadCoreBusy > LOAD_CORE_WARN) busyLoadCore.push(viewers);
      if (!sample.passed) {
        stopReason = sample.breaches.join(', ');
        saturated = true;
        break;
      }
    }
  } finally {
    await feed?.stop().catch(() => undefined);
    await target?.close().catch(() => undefined);
    sinks.close();
  }
  if (busyLoadCore.length > 0) {
    const max = Math.max(...steps.map((st) => st.loadCoreBusy));
    notes.push(
      `${o.label}: the load core was over ${LOAD_CORE_WARN * 100} % busy (max ${(max * 100).toFixed(0)} %) at ${busyLoadCore.length} of ${steps.length} steps (${busyLoadCore.join(', ')} viewers), mostly not our sinks (see sinkCpuPct): the sinks may have lagged`,
    );
  }
  const passedSteps = steps.filter((s) => s.passed);
  const fitSteps: RampStep[] = idle ? [{ viewers: 0, cpu: idle.cpu, loss: 0, passed: true }, ...passedSteps] : passedSteps;
  const summary = summarizeRamp(fitSteps, o.limits, saturated);
  return {
    label: o.label,
    kind: target?.kind ?? 'unknown',
    steps,
    idle,
    summary,
    stopReason,
    target: target?.info() ?? {},
    durationMs: Date.now() - started,
    notes,
  };
}
