import { setTimeout as sleep } from 'node:timers/promises';
import type { FleetTotals, ViewerFleet } from '../../ViewerFleet.js';
import { coreBusyShares, processCpuSeconds, readCoreTimes, type CoreTimes } from './procStat.js';
import { limitBreaches, type RampLimits, type RampStep } from './ramp.js';
import type { RealTarget } from './RealTarget.js';
import { windowMedia, type MediaWindow } from './realWindow.js';

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

interface Reading {
  t: number;
  serverCpu: number;
  sinkCpu: number;
  cores: CoreTimes[];
  fleet: FleetTotals;
}

/**
 * The real-path ramp's measurements against one server and its sink viewers: a window is the
 * difference of two readings (the server's processes, both cores from /proc/stat, the fleet's
 * totals) taken `windowMs` apart.
 */
export class StepMeter {
  /** The fleet's totals at the last reading: the ramp's join times come from them. */
  lastTotals: FleetTotals | undefined;
  readonly #o: { serverCore: number; loadCore: number; limits: RampLimits; windowMs: number };
  readonly #target: RealTarget;
  readonly #fleet: ViewerFleet;

  constructor(o: { serverCore: number; loadCore: number; limits: RampLimits; windowMs: number }, target: RealTarget, fleet: ViewerFleet) {
    this.#o = o;
    this.#target = target;
    this.#fleet = fleet;
  }

  /** CPU seconds the server's processes have used so far. */
  serverCpu(): number {
    let sum = 0;
    for (const pid of this.#target.pids()) sum += processCpuSeconds(pid) ?? 0;
    return sum;
  }

  /** One window at `viewers`, checked against the limits (a viewer receiving nothing is a breach too); throws if the server failed. */
  async measure(viewers: number, extra: Pick<RealStep, 'joinCpuMs' | 'addMs' | 'joinFailures'>, remeasured: boolean): Promise<RealStep> {
    const o = this.#o;
    const a = await this.#read();
    await sleep(o.windowMs);
    const b = await this.#read();
    const failure = this.#target.failure();
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
  }

  async #read(): Promise<Reading> {
    const f = this.#fleet;
    const fleetTotals = await f.snapshot();
    this.lastTotals = fleetTotals;
    return {
      t: performance.now(),
      serverCpu: this.serverCpu(),
      sinkCpu: f.pids.reduce((a, pid) => a + (processCpuSeconds(pid) ?? 0), 0),
      cores: readCoreTimes(),
      fleet: fleetTotals,
    };
  }
}
