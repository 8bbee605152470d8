/**
 * Capacity benchmark on the real viewer path: Cascade's origin against Janus's Streaming
 * plugin, the same audio+video stream, WebRTC viewers (the Go load sink: ICE, DTLS-SRTP, RTCP
 * receiver reports, NACK, transport-cc where negotiated) joining through each server's own
 * signalling, on the same machine in the same run.
 *
 * - The server (Cascade: its Node process and its one mediasoup worker; Janus: all threads)
 *   is pinned to core 0; the sinks, the feeds and this process to core 1.
 * - Viewers are added in steps; each step is measured over a window: the server's CPU (its
 *   processes from /proc/<pid>/stat, plus softirq and steal of its core from /proc/stat),
 *   loss at the viewers (sequence gaps after NACK repair; a viewer receiving nothing counts as
 *   losing everything), and the CPU of the joins (DTLS handshakes) apart from the steady state.
 * - Every ramp stops for a named reason (a limit confirmed by a second window, failed joins,
 *   the load core saturating, the time budget); capacity is where the server's fitted CPU
 *   line reaches 85 % of a core.
 * - Ramps alternate between the servers and repeat, at 0.5, 1.5 and 3 Mbit/s; figures are
 *   means with 95 % t intervals, the ratio with a bootstrap interval.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import path from 'node:path';
import { defaultWorkerBin } from '@cascade/config';
import { ensureAvClip } from '../clip.js';
import { ensureSink } from '../sink.js';
import type { BenchContext, BenchResult } from './types.js';
import { CascadeOrigin } from './capacity/CascadeOrigin.js';
import { capacityFigures, rampWarnings, type Kind, type Run } from './capacity/figures.js';
import { JanusStreaming } from './capacity/JanusStreaming.js';
import { allowedCpus, pinProcessCores } from './capacity/procStat.js';
import type { RampLimits, StepPlan } from './capacity/ramp.js';
import { rampCapacity } from './capacity/rampCapacity.js';
import { runRealRamp, type RealRampOptions } from './capacity/realRamp.js';
import { TargetUnavailableError, type RealTarget } from './capacity/RealTarget.js';
import { buildLine, compactRun, rampTable, workerBuildInfo } from './capacity/report.js';

/** Each kind's name in the log and in the table of ramps. */
const LABELS: Record<Kind, string> = { cascade: 'cascade', cascadeNoTwcc: 'cascade-no-twcc', janus: 'janus', janusSsl: 'janus+openssl-srtp' };

const SERVER_CORE = 0;
const LOAD_CORE = 1;
const LIMITS: RampLimits = { maxLoss: 0.01, maxCpu: 0.85 };
/** The sinks' settings: a browser-like viewer (see load-tests/sink). */
const SINK_CONFIG = { pingMs: 1000, twcc: true, srtpProfiles: ['AES_CM_128_HMAC_SHA1_80'], pollMs: 20 } as const;

export interface ScaleSettings {
  bitratesKbps: number[];
  /** Ramps per server and bitrate, alternating which server goes first. */
  repetitions: number;
  plan: StepPlan;
  joinRatePerSec: number;
  settleMs: number;
  windowMs: number;
  /** Per ramp (ms). */
  rampBudgetMs: number;
  /** No new ramp starts after this (ms from the start). */
  totalBudgetMs: number;
  /** Also ramp the variants (Janus on OpenSSL SRTP, Cascade without transport-cc) at the first bitrate. */
  variants: boolean;
}

export const CAPACITY_SCALES: Record<BenchContext['scale'], ScaleSettings> = {
  quick: {
    bitratesKbps: [500],
    repetitions: 1,
    plan: { firstStep: 100, minStep: 50, maxStep: 400, cpuPerStep: 0.25, maxViewers: 3000 },
    joinRatePerSec: 100,
    settleMs: 1500,
    windowMs: 2000,
    rampBudgetMs: 60_000,
    totalBudgetMs: 150_000,
    variants: false,
  },
  full: {
    bitratesKbps: [500, 1500, 3000],
    repetitions: 5,
    plan: { firstStep: 100, minStep: 25, maxStep: 400, cpuPerStep: 0.1, maxViewers: 6000 },
    joinRatePerSec: 100,
    settleMs: 2000,
    windowMs: 4000,
    rampBudgetMs: 180_000,
    totalBudgetMs: 100 * 60_000,
    variants: true,
  },
};

export interface CapacityBenchOptions {
  /** Settings other than the context's scale (the tests' tiny runs). */
  scale?: ScaleSettings;
  /** Janus binary (default: `janus` on the PATH). */
  janusBin?: string;
  /**
   * Folder with an OpenSSL libsrtp2.so.1 to also ramp Janus on (at the first bitrate). Default:
   * the one the worker build made (build-info.json srtpLibDir); none: that series is skipped.
   */
  janusLibraryPath?: string | null;
}

/** The machine as the ramps need it, and what to put back after them. */
interface Machine {
  workerBin: string;
  sinkBin: string;
  loadStart: number;
  /** Scratch folder (Janus's configurations), removed after the ramps. */
  dir: string;
  /** This process's cores before it was pinned to the load core. */
  ownCpus: string | null;
  /** Folder of the OpenSSL libsrtp2 to also ramp Janus on, if any. */
  janusSslLib: string | undefined;
}

/** What the ramps left: the ones that completed, the ones that failed, and why Janus could not run (if it could not). */
interface Ramps {
  runs: Run[];
  failures: string[];
  janusUnavailable: string | undefined;
}

export async function runCapacityBench(ctx: BenchContext, options: CapacityBenchOptions = {}): Promise<BenchResult> {
  const started = Date.now();
  const s = options.scale ?? CAPACITY_SCALES[ctx.scale];
  const warnings: string[] = [];
  const machine = await prepareMachine(s, options, warnings);
  let ramps: Ramps;
  try {
    ramps = await runEveryRamp(ctx, s, options, machine, started, warnings);
  } finally {
    if (machine.ownCpus) pinProcessCores(process.pid, machine.ownCpus);
    rmSync(machine.dir, { recursive: true, force: true });
  }
  return capacityResult(s, machine, ramps, warnings, started);
}

/** Checks the machine, then pins this process to the load core: the server must have its core to itself. */
async function prepareMachine(s: ScaleSettings, options: CapacityBenchOptions, warnings: string[]): Promise<Machine> {
  if (cpus().length < 2) throw new Error('the capacity benchmark needs 2 cores: one for the server, one for the load');
  const workerBin = defaultWorkerBin(process.env);
  if (!existsSync(workerBin)) throw new Error(`mediasoup worker not found at ${workerBin}; run scripts/setup.sh first`);
  const sinkBin = await ensureSink();
  const loadStart = loadavg()[0]!;
  const dir = mkdtempSync(path.join(tmpdir(), 'cascade-capacity-'));
  // This process runs the Cascade broadcaster and reads the sinks: it belongs on the load core.
  const ownCpus = allowedCpus(process.pid);
  pinProcessCores(process.pid, String(LOAD_CORE));
  const build = workerBuildInfo(workerBin) as { srtpLibDir?: string } | null;
  const janusSslLib = options.janusLibraryPath === null ? undefined : (options.janusLibraryPath ?? (build?.srtpLibDir || undefined));
  if (s.variants && !janusSslLib && options.janusLibraryPath !== null) {
    // Without it Janus runs on Debian's libsrtp2 (NSS crypto) while the worker has OpenSSL's: say so beside the ratio.
    warnings.push("Janus ran on Debian's libsrtp2 (NSS crypto backend) only: the worker build recorded no shared OpenSSL libsrtp2 (build-info.json srtpLibDir; a worker cached from before the build made one), so the like-for-like series with Janus on the worker's OpenSSL libsrtp2 was not run");
  }
  return { workerBin, sinkBin, loadStart, dir, ownCpus, janusSslLib };
}

/**
 * Every ramp, bitrate by bitrate, the servers alternating and repeating, until the time budget:
 * a failed ramp is recorded and the others still run (Janus missing ends Janus's series).
 */
async function runEveryRamp(ctx: BenchContext, s: ScaleSettings, options: CapacityBenchOptions, machine: Machine, started: number, warnings: string[]): Promise<Ramps> {
  const ramps: Ramps = { runs: [], failures: [], janusUnavailable: undefined };
  let janusDirs = 0;
  const janusDir = () => mkdtempSync(path.join(machine.dir, `janus-${++janusDirs}-`));
  for (const [bi, kbps] of s.bitratesKbps.entries()) {
    const clip = await ensureAvClip(kbps);
    const start = targetStarters(s, options, clip, janusDir, machine.janusSslLib);
    // At the first bitrate also: Janus on the OpenSSL libsrtp2 (what Janus would gain from the same
    // rebuild), and Cascade without transport-cc (what leaving it out for viewers would gain).
    const kinds: Kind[] = bi === 0 && s.variants ? ['cascade', 'janus', 'cascadeNoTwcc', ...(machine.janusSslLib ? (['janusSsl'] as const) : [])] : ['cascade', 'janus'];
    for (let rep = 1; rep <= s.repetitions; rep++) {
      // Alternate the order so a slow drift in the machine's load favours neither server.
      const order: Kind[] = rep % 2 === 1 ? kinds : [...kinds].reverse();
      for (const kind of order) {
        if ((kind === 'janus' || kind === 'janusSsl') && ramps.janusUnavailable) continue;
        const label = `${LABELS[kind]} ${kbps} kbit/s #${rep}`;
        if (Date.now() - started > s.totalBudgetMs) {
          warnings.push(`time budget used up: ramp "${label}" skipped`);
          continue;
        }
        await rampOnce(ctx, s, machine.sinkBin, { kind, kbps, label, startTarget: start[kind] }, ramps);
      }
    }
  }
  return ramps;
}

/** How to start each kind of server on one clip: both on the server core, Janus in a fresh folder each time. */
function targetStarters(s: ScaleSettings, options: CapacityBenchOptions, clip: string, janusDir: () => string, janusSslLib: string | undefined): Record<Kind, () => Promise<RealTarget>> {
  const janus = (libraryPath?: string) => () =>
    JanusStreaming.start({
      core: SERVER_CORE,
      feedCore: LOAD_CORE,
      dir: janusDir(),
      clip,
      deadlineSec: Math.ceil(s.rampBudgetMs / 1000) + 180,
      ...(options.janusBin ? { bin: options.janusBin } : {}),
      ...(libraryPath ? { libraryPath } : {}),
    });
  const cascade = () => CascadeOrigin.start({ core: SERVER_CORE, clip, deadlineSec: Math.ceil(s.rampBudgetMs / 1000) + 180 });
  return { cascade, cascadeNoTwcc: cascade, janus: janus(), janusSsl: janus(janusSslLib) };
}

/** One ramp against one server and its capacity; an error is kept in `ramps` (Janus missing: as the reason Janus is left out). */
async function rampOnce(ctx: BenchContext, s: ScaleSettings, sinkBin: string, r: { kind: Kind; kbps: number; label: string; startTarget: () => Promise<RealTarget> }, ramps: Ramps): Promise<void> {
  const { kind, kbps, label } = r;
  ctx.log(`[capacity] ${label}: ramp starts`);
  const options: RealRampOptions = {
    label,
    startTarget: r.startTarget,
    sinkBin,
    sinkConfig: { ...SINK_CONFIG, srtpProfiles: [...SINK_CONFIG.srtpProfiles], twcc: kind !== 'cascadeNoTwcc' },
    sinkProcesses: 1,
    serverCore: SERVER_CORE,
    loadCore: LOAD_CORE,
    limits: LIMITS,
    plan: s.plan,
    joinRatePerSec: s.joinRatePerSec,
    settleMs: s.settleMs,
    windowMs: s.windowMs,
    budgetMs: s.rampBudgetMs,
    log: ctx.log,
  };
  try {
    const run = await runRealRamp(options);
    const stoppedByCpu = /^cpu /.test(run.stopReason);
    ramps.runs.push({ ...run, kind, kbps, capacity: rampCapacity(run.summary, stoppedByCpu) });
    ctx.log(`[capacity] ${label}: ${run.stopReason}; capacity ${ramps.runs[ramps.runs.length - 1]!.capacity.viewers ?? '–'} viewers`);
  } catch (err) {
    const msg = `${label} failed: ${(err as Error).message}`;
    ctx.log(`[capacity] ${msg}`);
    if (err instanceof TargetUnavailableError) ramps.janusUnavailable = (err as Error).message;
    else ramps.failures.push(msg);
  }
}

/** The figures per bitrate, every warning that weakens them (in report order), and the JSON details. */
function capacityResult(s: ScaleSettings, machine: Machine, ramps: Ramps, warnings: string[], started: number): BenchResult {
  const { runs, failures, janusUnavailable } = ramps;
  if (janusUnavailable) warnings.push(`NO PEER BASELINE: Janus could not be measured (${janusUnavailable}); the ratios are missing (NaN)`);
  for (const f of failures) warnings.push(f);
  const { figures, perBitrate } = capacityFigures(runs, s.bitratesKbps, s.joinRatePerSec, LIMITS.maxCpu, warnings);
  if (figures.length === 0) throw new Error(`no Cascade ramp completed: ${failures.join('; ') || 'see the log'}`);
  warnings.push(...rampWarnings(runs));
  if (machine.loadStart > 1.5) warnings.push(`the machine was busy when the benchmark started (load average ${machine.loadStart.toFixed(1)} on ${cpus().length} cores)`);
  warnings.push(
    "Janus's Streaming plugin negotiates no transport-wide congestion control with its viewers (it offers no transport-cc header extension), so Janus viewers send no TWCC feedback and Janus runs no bandwidth estimation; Cascade's viewers do both, as browsers do with mediasoup",
  );
  return {
    id: 'capacity',
    title: 'Viewers per server core on the real path: Cascade vs Janus, same stream, same machine, same run',
    figures,
    details: {
      scale: s,
      limits: LIMITS,
      sink: SINK_CONFIG,
      pinning: { serverCore: SERVER_CORE, loadCore: LOAD_CORE, note: 'sinks, feeds, the Cascade broadcaster and this process on the load core' },
      machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release(), loadAverageStart: machine.loadStart, loadAverageEnd: loadavg()[0] },
      workerBuild: workerBuildInfo(machine.workerBin),
      perBitrate,
      janusUnavailable: janusUnavailable ?? null,
      ramps: runs.map(compactRun),
    },
    markdown: `${buildLine(workerBuildInfo(machine.workerBin))}\n\n${rampTable(runs, LIMITS.maxCpu)}`,
    warnings,
    durationMs: Date.now() - started,
  };
}
