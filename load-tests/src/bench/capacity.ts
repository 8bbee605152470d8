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
import type { BenchContext, BenchFigure, BenchResult } from './types.js';
import { CascadeOrigin } from './capacity/CascadeOrigin.js';
import { meanInterval, ratioInterval } from './capacity/confidence.js';
import { JanusStreaming } from './capacity/JanusStreaming.js';
import { allowedCpus, pinProcessCores } from './capacity/procStat.js';
import type { RampLimits, StepPlan } from './capacity/ramp.js';
import { rampCapacity, type RampCapacity } from './capacity/rampCapacity.js';
import { runRealRamp, type RealRampOptions, type RealRampRun } from './capacity/realRamp.js';
import { TargetUnavailableError, type RealTarget } from './capacity/RealTarget.js';
import { buildLine, compactRun, fmtInterval, fmtMs, janusVersion, median, rampTable, round, workerBuildInfo } from './capacity/report.js';

/**
 * janusSsl: Janus on the worker build's OpenSSL libsrtp2 (LD_LIBRARY_PATH), the like-for-like
 * baseline. cascadeNoTwcc: Cascade with viewers that do not negotiate transport-cc, what
 * leaving it out of the viewers' capabilities in sfu/ would give (see the report).
 */
type Kind = 'cascade' | 'cascadeNoTwcc' | 'janus' | 'janusSsl';
const LABELS: Record<Kind, string> = { cascade: 'cascade', cascadeNoTwcc: 'cascade-no-twcc', janus: 'janus', janusSsl: 'janus+openssl-srtp' };
type Run = RealRampRun & { kind: Kind; kbps: number; capacity: RampCapacity };

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

/** Ramps whose viewers-at-limit disagree by more than this (relative CI half-width) get a warning. */
const CI_WARN = 0.15;

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

export async function runCapacityBench(ctx: BenchContext, options: CapacityBenchOptions = {}): Promise<BenchResult> {
  const started = Date.now();
  const s = options.scale ?? CAPACITY_SCALES[ctx.scale];
  const warnings: string[] = [];
  if (cpus().length < 2) throw new Error('the capacity benchmark needs 2 cores: one for the server, one for the load');
  const workerBin = defaultWorkerBin(process.env);
  if (!existsSync(workerBin)) throw new Error(`mediasoup worker not found at ${workerBin}; run scripts/setup.sh first`);
  const sinkBin = await ensureSink();
  const loadStart = loadavg()[0]!;
  const dir = mkdtempSync(path.join(tmpdir(), 'cascade-capacity-'));
  // This process runs the Cascade broadcaster and reads the sinks: it belongs on the load core.
  const ownCpus = allowedCpus(process.pid);
  pinProcessCores(process.pid, String(LOAD_CORE));
  const runs: Run[] = [];
  const failures: string[] = [];
  let janusUnavailable: string | undefined;
  const build = workerBuildInfo(workerBin) as { srtpLibDir?: string } | null;
  const janusSslLib = options.janusLibraryPath === null ? undefined : (options.janusLibraryPath ?? (build?.srtpLibDir || undefined));
  if (s.variants && !janusSslLib && options.janusLibraryPath !== null) {
    // Without it Janus runs on Debian's libsrtp2 (NSS crypto) while the worker has OpenSSL's: say so beside the ratio.
    warnings.push("Janus ran on Debian's libsrtp2 (NSS crypto backend) only: the worker build recorded no shared OpenSSL libsrtp2 (build-info.json srtpLibDir; a worker cached from before the build made one), so the like-for-like series with Janus on the worker's OpenSSL libsrtp2 was not run");
  }
  try {
    let janusDirs = 0;
    for (const [bi, kbps] of s.bitratesKbps.entries()) {
      const clip = await ensureAvClip(kbps);
      const janus = (libraryPath?: string) => () =>
        JanusStreaming.start({
          core: SERVER_CORE,
          feedCore: LOAD_CORE,
          dir: mkdtempSync(path.join(dir, `janus-${++janusDirs}-`)),
          clip,
          deadlineSec: Math.ceil(s.rampBudgetMs / 1000) + 180,
          ...(options.janusBin ? { bin: options.janusBin } : {}),
          ...(libraryPath ? { libraryPath } : {}),
        });
      const cascade = () => CascadeOrigin.start({ core: SERVER_CORE, clip, deadlineSec: Math.ceil(s.rampBudgetMs / 1000) + 180 });
      const start: Record<Kind, () => Promise<RealTarget>> = { cascade, cascadeNoTwcc: cascade, janus: janus(), janusSsl: janus(janusSslLib) };
      // At the first bitrate also: Janus on the OpenSSL libsrtp2 (what Janus would gain from the same
      // rebuild), and Cascade without transport-cc (what leaving it out for viewers would gain).
      const kinds: Kind[] = bi === 0 && s.variants ? ['cascade', 'janus', 'cascadeNoTwcc', ...(janusSslLib ? (['janusSsl'] as const) : [])] : ['cascade', 'janus'];
      for (let rep = 1; rep <= s.repetitions; rep++) {
        // Alternate the order so a slow drift in the machine's load favours neither server.
        const order: Kind[] = rep % 2 === 1 ? kinds : [...kinds].reverse();
        for (const kind of order) {
          if ((kind === 'janus' || kind === 'janusSsl') && janusUnavailable) continue;
          const label = `${LABELS[kind]} ${kbps} kbit/s #${rep}`;
          if (Date.now() - started > s.totalBudgetMs) {
            warnings.push(`time budget used up: ramp "${label}" skipped`);
            continue;
          }
          ctx.log(`[capacity] ${label}: ramp starts`);
          const options: RealRampOptions = {
            label,
            startTarget: start[kind],
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
            runs.push({ ...run, kind, kbps, capacity: rampCapacity(run.summary, stoppedByCpu) });
            ctx.log(`[capacity] ${label}: ${run.stopReason}; capacity ${runs[runs.length - 1]!.capacity.viewers ?? '–'} viewers`);
          } catch (err) {
            const msg = `${label} failed: ${(err as Error).message}`;
            ctx.log(`[capacity] ${msg}`);
            if (err instanceof TargetUnavailableError) janusUnavailable = (err as Error).message;
            else failures.push(msg);
          }
        }
      }
    }
  } finally {
    if (ownCpus) pinProcessCores(process.pid, ownCpus);
    rmSync(dir, { recursive: true, force: true });
  }

  if (janusUnavailable) warnings.push(`NO PEER BASELINE: Janus could not be measured (${janusUnavailable}); the ratios are missing (NaN)`);
  for (const f of failures) warnings.push(f);
  const figures: BenchFigure[] = [];
  const perBitrate: Record<string, unknown>[] = [];
  for (const kbps of s.bitratesKbps) {
    const of = (kind: Kind) => runs.filter((r) => r.kind === kind && r.kbps === kbps);
    const cascade = of('cascade');
    const janus = of('janus');
    if (cascade.length === 0) {
      warnings.push(`${kbps} kbit/s: no Cascade ramp completed`);
      continue;
    }
    const capOf = (rs: Run[]) => rs.flatMap((r) => (r.capacity.viewers === null ? [] : [r.capacity.viewers]));
    const cCap = meanInterval(capOf(cascade));
    const jCap = meanInterval(capOf(janus));
    const ratio = ratioInterval(capOf(cascade), capOf(janus));
    const cpv = (rs: Run[]) => meanInterval(rs.flatMap((r) => (r.summary.cpuPerViewer === null ? [] : [r.summary.cpuPerViewer * 100])));
    const usPerPacket = (rs: Run[]) =>
      meanInterval(
        rs.flatMap((r) => {
          const pps = median(r.steps.filter((st) => st.passed).map((st) => st.media.ppsPerViewer));
          return r.summary.cpuPerViewer !== null && pps ? [(r.summary.cpuPerViewer / pps) * 1e6] : [];
        }),
      );
    const joinCost = (rs: Run[]) => meanInterval(rs.flatMap((r) => r.steps.flatMap((st) => (st.joinCpuMs === null ? [] : [st.joinCpuMs]))));
    const cCpv = cpv(cascade);
    const jCpv = cpv(janus);
    const cUs = usPerPacket(cascade);
    const jUs = usPerPacket(janus);
    const cJoin = joinCost(cascade);
    const jJoin = joinCost(janus);
    const pps = median(runs.filter((r) => r.kbps === kbps).flatMap((r) => r.steps.map((st) => st.media.ppsPerViewer)));
    const kbpsSeen = median(runs.filter((r) => r.kbps === kbps).flatMap((r) => r.steps.map((st) => st.media.kbpsPerViewer)));
    const label = `${(kbps / 1000).toFixed(1)} Mbit/s`;
    const janusSsl = of('janusSsl');
    const jsCap = meanInterval(capOf(janusSsl));
    const sslRatio = ratioInterval(capOf(cascade), capOf(janusSsl));
    figures.push({
      name: `viewers per server core at ${label} (audio + video, WebRTC viewers through each server's signalling): Cascade origin`,
      value: round(cCap!.mean, 0),
      unit: 'viewers',
      baseline: { name: `Janus ${janusVersion(janus)} Streaming plugin`, value: round(jCap?.mean ?? NaN, 0), unit: 'viewers' },
      ratio: ratio?.ratio ?? NaN,
      note:
        `Higher is better; ratio = Cascade / Janus. Where the server's CPU (processes + softirq + steal of its core), fitted against viewers, reaches ${LIMITS.maxCpu * 100} % of a core. ` +
        `Cascade ${fmtInterval(cCap)}, Janus ${fmtInterval(jCap)} (mean, 95 % t interval over ${cCap?.n ?? 0} and ${jCap?.n ?? 0} ramps); ` +
        `ratio ${ratio ? `${ratio.ratio.toFixed(2)} [${ratio.lo.toFixed(2)}, ${ratio.hi.toFixed(2)}] (bootstrap, ${ratio.resamples} resamples)` : 'n/a'}. ` +
        `~${kbpsSeen?.toFixed(0) ?? '?'} kbit/s and ~${pps?.toFixed(0) ?? '?'} packets/s per viewer measured at the sinks.`,
    });
    const noTwcc = of('cascadeNoTwcc');
    const ntCap = meanInterval(capOf(noTwcc));
    const ntRatio = ratioInterval(capOf(noTwcc), capOf(janus));
    if (ntCap) {
      figures.push({
        name: `viewers per server core at ${label}, Cascade with viewers that do not negotiate transport-cc`,
        value: round(ntCap.mean, 0),
        unit: 'viewers',
        baseline: { name: `Janus ${janusVersion(janus)} Streaming plugin`, value: round(jCap?.mean ?? NaN, 0), unit: 'viewers' },
        ratio: ntRatio?.ratio ?? NaN,
        note:
          `Higher is better; ratio = Cascade / Janus. The same origin, the sinks leaving transport-wide congestion control out (as a viewer does when the server does not offer it): mediasoup then runs no send-side bandwidth estimation per viewer, which single-layer consumers do not use. ` +
          `${fmtInterval(ntCap)} over ${ntCap.n} ramps vs ${fmtInterval(cCap)} with it; ratio to Janus ${ntRatio ? `${ntRatio.ratio.toFixed(2)} [${ntRatio.lo.toFixed(2)}, ${ntRatio.hi.toFixed(2)}]` : 'n/a'}.`,
      });
    }
    if (jsCap) {
      figures.push({
        name: `viewers per server core at ${label}, both servers on the same OpenSSL libsrtp2: Cascade origin`,
        value: round(cCap!.mean, 0),
        unit: 'viewers',
        baseline: { name: `Janus ${janusVersion(janusSsl)} Streaming plugin with the worker build's libsrtp2 (LD_LIBRARY_PATH)`, value: round(jsCap.mean, 0), unit: 'viewers' },
        ratio: sslRatio?.ratio ?? NaN,
        note:
          `Higher is better; ratio = Cascade / Janus on the same SRTP library (Debian's Janus links Debian's NSS-backed libsrtp2, the row above). ` +
          `Janus ${fmtInterval(jsCap)} over ${jsCap.n} ramps; ratio ${sslRatio ? `${sslRatio.ratio.toFixed(2)} [${sslRatio.lo.toFixed(2)}, ${sslRatio.hi.toFixed(2)}]` : 'n/a'}.`,
      });
    }
    figures.push({
      name: `server CPU per forwarded packet at ${label}: Cascade origin`,
      value: round(cUs?.mean ?? NaN, 2),
      unit: 'µs per packet',
      baseline: { name: 'Janus Streaming plugin', value: round(jUs?.mean ?? NaN, 2), unit: 'µs per packet' },
      ratio: cUs && jUs && cUs.mean > 0 ? jUs.mean / cUs.mean : NaN,
      note:
        `Lower is better; ratio = Janus / Cascade (how many times cheaper Cascade is). Slope of the server's CPU against viewers over the passing steps, divided by the packets per second each viewer received. ` +
        `Cascade ${fmtInterval(cUs, 2)} µs (${fmtInterval(cCpv, 4)} % of a core per viewer), Janus ${fmtInterval(jUs, 2)} µs (${fmtInterval(jCpv, 4)} % per viewer).`,
    });
    figures.push({
      name: `server CPU per join at ${label} (ICE, DTLS handshake, signalling, consumers): Cascade origin`,
      value: round(cJoin?.mean ?? NaN, 2),
      unit: 'ms of CPU per join',
      baseline: { name: 'Janus Streaming plugin', value: round(jJoin?.mean ?? NaN, 2), unit: 'ms of CPU per join' },
      ratio: cJoin && jJoin && cJoin.mean > 0 ? jJoin.mean / cJoin.mean : NaN,
      note:
        `Lower is better; ratio = Janus / Cascade. The server's CPU while a step's viewers joined (at ${s.joinRatePerSec} joins/s) above its steady state, per join, kept apart from the steady-state figures above. ` +
        `Cascade ${fmtInterval(cJoin, 2)} ms over ${cJoin?.n ?? 0} steps, Janus ${fmtInterval(jJoin, 2)} ms over ${jJoin?.n ?? 0} steps. ` +
        `Join to DTLS connected at the sink, p50: Cascade ${fmtMs(median(cascade.map((r) => r.join.p50)))}, Janus ${fmtMs(median(janus.map((r) => r.join.p50)))} (DTLS alone ${fmtMs(median(cascade.map((r) => r.join.dtlsP50)))} and ${fmtMs(median(janus.map((r) => r.join.dtlsP50)))}).`,
    });
    if (cCap && cCap.n > 1 && (cCap.hi - cCap.lo) / 2 / cCap.mean > CI_WARN) warnings.push(`${label}: Cascade's ramps disagree (95 % interval ±${(((cCap.hi - cCap.lo) / 2 / cCap.mean) * 100).toFixed(0)} %): the machine was noisy`);
    if (jCap && jCap.n > 1 && (jCap.hi - jCap.lo) / 2 / jCap.mean > CI_WARN) warnings.push(`${label}: Janus's ramps disagree (95 % interval ±${(((jCap.hi - jCap.lo) / 2 / jCap.mean) * 100).toFixed(0)} %): the machine was noisy`);
    perBitrate.push({
      kbps,
      cascade: { capacity: cCap, cpuPerViewerPct: cCpv, usPerPacket: cUs, joinCpuMs: cJoin },
      janus: { capacity: jCap, cpuPerViewerPct: jCpv, usPerPacket: jUs, joinCpuMs: jJoin },
      ...(ntCap ? { cascadeNoTwcc: { capacity: ntCap, cpuPerViewerPct: cpv(noTwcc), usPerPacket: usPerPacket(noTwcc) }, ratioNoTwcc: ntRatio } : {}),
      ...(jsCap ? { janusOpensslSrtp: { capacity: jsCap, cpuPerViewerPct: cpv(janusSsl), usPerPacket: usPerPacket(janusSsl) }, ratioOpensslSrtp: sslRatio } : {}),
      ratio,
      ppsPerViewer: pps,
      kbpsPerViewer: kbpsSeen,
    });
  }
  if (figures.length === 0) throw new Error(`no Cascade ramp completed: ${failures.join('; ') || 'see the log'}`);
  for (const r of runs) {
    if (r.capacity.basis === 'extrapolated') warnings.push(`${r.label} stopped before any limit (${r.stopReason}): its capacity ${r.capacity.viewers ?? '–'} is the CPU fit extrapolated`);
    warnings.push(...r.notes);
    const other = Math.max(0, ...r.steps.map((st) => st.coreOther));
    if (other > 0.1) warnings.push(`${r.label}: up to ${(other * 100).toFixed(0)} % of the server core went to other processes (other engineers' jobs)`);
    const steal = Math.max(0, ...r.steps.map((st) => st.steal));
    if (steal > 0.05) warnings.push(`${r.label}: up to ${(steal * 100).toFixed(0)} % steal on the server core (the hypervisor ran something else), counted as the server's CPU`);
  }
  if (loadStart > 1.5) warnings.push(`the machine was busy when the benchmark started (load average ${loadStart.toFixed(1)} on ${cpus().length} cores)`);
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
      machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release(), loadAverageStart: loadStart, loadAverageEnd: loadavg()[0] },
      workerBuild: workerBuildInfo(workerBin),
      perBitrate,
      janusUnavailable: janusUnavailable ?? null,
      ramps: runs.map(compactRun),
    },
    markdown: `${buildLine(workerBuildInfo(workerBin))}\n\n${rampTable(runs, LIMITS.maxCpu)}`,
    warnings,
    durationMs: Date.now() - started,
  };
}
