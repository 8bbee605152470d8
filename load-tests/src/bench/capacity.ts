/**
 * Capacity benchmark: viewers per origin core, mediasoup against Janus measured in the same
 * run on the same machine.
 *
 * - The SFU (mediasoup worker, or every Janus thread) is pinned to core 0; everything that
 *   makes the load (sinks, ffmpeg) to core 1. The mediasoup worker's Node driver is on core 1
 *   too (idle while measuring); this process is not pinned and does little.
 * - Both SFUs get the same RTP stream: ffmpeg replaying the cached VP8 clip (`-c:v copy`).
 * - A viewer is one SRTP (AES_CM_128_HMAC_SHA1_80) RTP stream to its own UDP socket:
 *   a mediasoup consumer on an SRTP PlainTransport, or a Janus VideoRoom `rtp_forward` with
 *   srtp_suite 80 of a remote publisher. Sinks are a C epoll/recvmmsg program (capacity/
 *   udpSink.ts), which costs several times less per packet than the SFU.
 * - Viewers are added in steps; each step is measured over a window: the SFU process's CPU
 *   (/proc/<pid>/stat, share of one core) and loss (sequence gaps per socket, read from the
 *   clear RTP header of the SRTP packets, minus what the kernel dropped at full sink sockets).
 *   The ramp stops at loss > 1 % or CPU > 85 % (confirmed by a second window); the figure is
 *   the last step under both, plus the CPU per viewer (least-squares slope).
 * - Ramps alternate between the SFUs and repeat (full scale), and the median is reported with
 *   its spread: other engineers share this machine.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import path from 'node:path';
import { defaultWorkerBin } from '@cascade/config';
import { ensureClip } from '../clip.js';
import type { BenchContext, BenchFigure, BenchResult } from './types.js';
import { JanusTarget, JanusUnavailableError } from './capacity/JanusTarget.js';
import { MediasoupTarget } from './capacity/MediasoupTarget.js';
import { spread, type RampLimits, type Spread, type StepPlan } from './capacity/ramp.js';
import { runRamp, type RampRun } from './capacity/runRamp.js';
import type { SfuTarget } from './capacity/SfuTarget.js';
import { buildSink } from './capacity/udpSink.js';

type Kind = 'mediasoup' | 'janus';
type TaggedRun = RampRun & { srtp: boolean };

const SFU_CORE = 0;
const LOAD_CORE = 1;
const LIMITS: RampLimits = { maxLoss: 0.01, maxCpu: 0.85 };

interface ScaleSettings {
  /** SRTP ramps per SFU, alternating which goes first. */
  repetitions: number;
  /** Plain-RTP ramps per SFU (forwarding without encryption), after the SRTP ones. */
  plainRepetitions: number;
  plan: StepPlan;
  settleMs: number;
  windowMs: number;
  /** Per ramp (ms). */
  rampBudgetMs: number;
  /** No new ramp starts after this (ms from the start). */
  totalBudgetMs: number;
}

const SCALES: Record<BenchContext['scale'], ScaleSettings> = {
  quick: {
    repetitions: 1,
    plainRepetitions: 0,
    plan: { firstStep: 200, minStep: 50, maxStep: 600, cpuPerStep: 0.2, maxViewers: 3000 },
    settleMs: 1000,
    windowMs: 1500,
    rampBudgetMs: 30_000,
    totalBudgetMs: 75_000,
  },
  full: {
    repetitions: 3,
    plainRepetitions: 1,
    plan: { firstStep: 100, minStep: 25, maxStep: 500, cpuPerStep: 0.08, maxViewers: 6000 },
    settleMs: 1200,
    windowMs: 3000,
    rampBudgetMs: 90_000,
    totalBudgetMs: 480_000,
  },
};

/** A spread wider than this (max − min over the median) gets a warning. */
const SPREAD_WARN = 0.15;
/** A ramp whose CPU-vs-viewers line fits worse than this gets a warning. */
const LINEAR_WARN = 0.95;
/** Another process using more than this share of the SFU core during a window gets a warning. */
const NEIGHBOUR_WARN = 0.1;

export async function runCapacityBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const s = SCALES[ctx.scale];
  const warnings: string[] = [];
  if (cpus().length < 2) throw new Error('the capacity benchmark needs 2 cores: one for the SFU, one for the load');
  const workerBin = defaultWorkerBin(process.env);
  if (!existsSync(workerBin)) throw new Error(`mediasoup worker not found at ${workerBin}; run scripts/setup.sh first`);
  const loadStart = loadavg()[0]!;
  const dir = mkdtempSync(path.join(tmpdir(), 'cascade-capacity-'));
  const runs: TaggedRun[] = [];
  const failures: string[] = [];
  let janusUnavailable: string | undefined;
  try {
    const clip = await ensureClip();
    const sinkBin = await buildSink(dir);
    const deadlineSec = Math.ceil(s.rampBudgetMs / 1000) + 90;
    const common = {
      sinkBin,
      clip,
      sfuCore: SFU_CORE,
      loadCore: LOAD_CORE,
      limits: LIMITS,
      plan: s.plan,
      settleMs: s.settleMs,
      windowMs: s.windowMs,
      budgetMs: s.rampBudgetMs,
      deadlineSec,
      log: ctx.log,
    };
    let janusRuns = 0;
    const start = (kind: Kind, srtp: boolean) => (): Promise<SfuTarget> =>
      kind === 'mediasoup'
        ? MediasoupTarget.start({ workerBin, sfuCore: SFU_CORE, driverCore: LOAD_CORE, deadlineSec, srtp })
        : JanusTarget.start({ core: SFU_CORE, dir: mkdtempSync(path.join(dir, `janus-${++janusRuns}-`)), deadlineSec, srtp }).catch((err: Error) => {
            // Janus that does not start here will not start on the next try either.
            throw err instanceof JanusUnavailableError ? err : new JanusUnavailableError(`janus did not start: ${err.message}`, { cause: err });
          });

    const series: { srtp: boolean; reps: number }[] = [
      { srtp: true, reps: s.repetitions },
      { srtp: false, reps: s.plainRepetitions },
    ];
    for (const { srtp, reps } of series) {
      for (let rep = 1; rep <= reps; rep++) {
        // Alternate the order so a slow drift in the machine's load does not favour one SFU.
        const order: Kind[] = rep % 2 === 1 ? ['mediasoup', 'janus'] : ['janus', 'mediasoup'];
        for (const kind of order) {
          if (kind === 'janus' && janusUnavailable) continue;
          const label = `${kind}${srtp ? '' : ' plain RTP'} #${rep}`;
          if (Date.now() - started > s.totalBudgetMs) {
            warnings.push(`time budget used up: ramp "${label}" skipped`);
            continue;
          }
          ctx.log(`[capacity] ${label}: ramp starts`);
          try {
            const run = await runRamp({ ...common, label, startTarget: start(kind, srtp) });
            runs.push({ ...run, srtp });
          } catch (err) {
            const msg = `${label} failed: ${(err as Error).message}`;
            ctx.log(`[capacity] ${msg}`);
            if (err instanceof JanusUnavailableError) janusUnavailable = msg;
            else failures.push(msg);
          }
        }
      }
    }
    if (!janusUnavailable && !runs.some((r) => r.kind === 'janus' && r.srtp)) {
      janusUnavailable = `no Janus ramp completed (${failures.filter((f) => f.startsWith('janus')).join('; ')})`;
    }

    // No Janus: the baseline becomes mediasoup with its sinks on the SFU's own core, measured now.
    let fallbackRuns: TaggedRun[] = [];
    if (janusUnavailable) {
      warnings.push(
        `NO PEER BASELINE: Janus could not be measured (${janusUnavailable}). The baseline is mediasoup with the sinks and ffmpeg on the SFU's core, which is NOT a peer SFU.`,
      );
      try {
        const run = await runRamp({ ...common, loadCore: SFU_CORE, label: 'mediasoup, sinks on the SFU core', startTarget: start('mediasoup', true) });
        fallbackRuns = [{ ...run, srtp: true }];
      } catch (err) {
        failures.push(`fallback baseline failed: ${(err as Error).message}`);
      }
    }

    const ms = runs.filter((r) => r.kind === 'mediasoup' && r.srtp);
    const janus = runs.filter((r) => r.kind === 'janus' && r.srtp);
    const msPlain = runs.filter((r) => r.kind === 'mediasoup' && !r.srtp);
    const janusPlain = runs.filter((r) => r.kind === 'janus' && !r.srtp);
    const base = janusUnavailable ? fallbackRuns : janus;
    const baseName = janusUnavailable
      ? 'mediasoup with sinks on the same core (fallback, not a peer SFU)'
      : `Janus ${String(janus[0]?.target.version ?? '')} VideoRoom, SRTP rtp_forward of a remote publisher`.replace(/\s+/g, ' ');

    const msVpc = spread(ms.map((r) => r.summary.viewersPerCore));
    const baseVpc = spread(base.map((r) => r.summary.viewersPerCore));
    const msCpv = spread(ms.flatMap((r) => (r.summary.cpuPerViewer === null ? [] : [r.summary.cpuPerViewer * 100])));
    const baseCpv = spread(base.flatMap((r) => (r.summary.cpuPerViewer === null ? [] : [r.summary.cpuPerViewer * 100])));
    const pps = medianOf(runs.flatMap((r) => r.steps.map((st) => st.ppsPerViewer)));
    const msPlainVpc = spread(msPlain.map((r) => r.summary.viewersPerCore));
    const janusPlainVpc = spread(janusPlain.map((r) => r.summary.viewersPerCore));
    const msPlainCpv = spread(msPlain.flatMap((r) => (r.summary.cpuPerViewer === null ? [] : [r.summary.cpuPerViewer * 100])));

    for (const f of failures) warnings.push(f);
    if (!msVpc) throw new Error(`no mediasoup ramp completed: ${failures.join('; ')}`);
    if (!baseVpc) warnings.push('no baseline ramp completed: the ratio is missing (NaN)');
    warnings.push(...spreadWarnings('mediasoup', msVpc), ...(baseVpc ? spreadWarnings('baseline', baseVpc) : []));
    for (const r of [...runs, ...fallbackRuns]) {
      if (!r.summary.saturated) {
        warnings.push(`${r.label} stopped before a limit (${r.stopReason}): its ${r.summary.viewersPerCore} viewers are a lower bound`);
      }
      warnings.push(...r.notes);
      const neighbour = Math.max(0, ...r.steps.map((st) => st.sfuCoreOther));
      if (neighbour > NEIGHBOUR_WARN) {
        warnings.push(
          `${r.label}: up to ${(neighbour * 100).toFixed(0)} % of the SFU core went to something other than the SFU process (other engineers' jobs, or softirq work of loopback delivery)`,
        );
      }
      if (r.summary.r2 !== null && r.summary.r2 < LINEAR_WARN) {
        warnings.push(
          `${r.label}: CPU was not linear in viewers (r² ${r.summary.r2.toFixed(2)}); its last passing step and its CPU per viewer disagree (fit reaches ${LIMITS.maxCpu * 100} % at ${r.summary.viewersAtCpuLimit} viewers)`,
        );
      }
      const sinkDrops = r.steps.reduce((a, st) => a + st.sinkDrops, 0);
      if (sinkDrops > 0) warnings.push(`${r.label}: ${sinkDrops} datagrams dropped at full sink sockets (taken out of the SFU's loss)`);
    }
    if (loadStart > 1.5) warnings.push(`the machine was busy when the benchmark started (load average ${loadStart.toFixed(1)} on ${cpus().length} cores)`);
    warnings.push(
      "loopback: the kernel delivers each datagram to the sink's socket in the sender's context, so that receive-side work (softirq) runs on the SFU core and mostly counts as the SFU process's CPU, for both SFUs alike; absolute figures are lower than with a NIC",
    );

    const sinkNote =
      (janusUnavailable
        ? 'Viewers are mediasoup consumers on SRTP (AES_CM_128_HMAC_SHA1_80) PlainTransports, one UDP socket each; the baseline is the same with sinks and ffmpeg moved onto the SFU core (Janus was not available)'
        : 'Viewers are SRTP (AES_CM_128_HMAC_SHA1_80) RTP streams to one UDP socket each, every viewer with its own key: mediasoup consumers on SRTP PlainTransports vs Janus VideoRoom rtp_forward (srtp_suite 80) of a remote publisher, both forwarding the same ffmpeg VP8 stream') +
      (pps ? ` (~${pps.toFixed(0)} packets/s per viewer)` : '') +
      '. Sinks: a C epoll/recvmmsg program that reads the clear RTP header of each SRTP packet, pinned with ffmpeg to core 1; the SFU pinned to core 0. No ICE/DTLS/NACK/RTCP feedback on either side, so this is forwarding + SRTP cost, not full WebRTC-viewer cost.';
    const figures: BenchFigure[] = [
      {
        name: "viewers per core of the origin's forwarding engine (a mediasoup 3.12.16 worker driven directly, SRTP PlainTransport consumers into UDP sinks)",
        value: msVpc.median,
        unit: 'viewers',
        baseline: { name: baseName, value: baseVpc?.median ?? NaN, unit: 'viewers' },
        ratio: baseVpc && baseVpc.median > 0 ? msVpc.median / baseVpc.median : NaN,
        note:
          `Higher is better; ratio = mediasoup / baseline. Last ramp step with SFU process CPU ≤ ${LIMITS.maxCpu * 100} % of one core and loss ≤ ${LIMITS.maxLoss * 100} %, ` +
          `median of ${msVpc.n} vs ${baseVpc?.n ?? 0} ramps (mediasoup ${range(msVpc)}, baseline ${baseVpc ? range(baseVpc) : 'n/a'}). ${sinkNote}`,
      },
      {
        name: 'SFU CPU per viewer (mediasoup)',
        value: round(msCpv?.median ?? NaN, 4),
        unit: '% of one core per viewer',
        baseline: { name: baseName, value: round(baseCpv?.median ?? NaN, 4), unit: '% of one core per viewer' },
        ratio: msCpv && baseCpv && msCpv.median > 0 ? baseCpv.median / msCpv.median : NaN,
        note:
          'Lower is better; ratio = baseline / mediasoup (how many times cheaper mediasoup is). Least-squares slope of the SFU process CPU against viewers over the passing steps and the 0-viewer window; median over ramps. ' +
          (pps && msCpv ? `At ~${pps.toFixed(0)} packets/s per viewer that is ~${((msCpv.median / 100 / pps) * 1e6).toFixed(1)} µs per forwarded packet for mediasoup` : '') +
          (pps && baseCpv ? ` and ~${((baseCpv.median / 100 / pps) * 1e6).toFixed(1)} µs for the baseline.` : '.'),
      },
    ];
    if (msPlainVpc) {
      figures.push({
        name: 'viewers per origin core without SRTP (mediasoup, plain-RTP PlainTransport consumers)',
        value: msPlainVpc.median,
        unit: 'viewers',
        baseline: { name: 'Janus VideoRoom, plain rtp_forward of a remote publisher', value: janusPlainVpc?.median ?? NaN, unit: 'viewers' },
        ratio: janusPlainVpc && janusPlainVpc.median > 0 ? msPlainVpc.median / janusPlainVpc.median : NaN,
        note:
          `Higher is better; ratio = mediasoup / Janus. Same ramp without encryption: the forwarding engines alone (${msPlainVpc.n} ramp each). ` +
          (msPlainCpv && msCpv ? `mediasoup spends ${msPlainCpv.median.toFixed(3)} % of a core per viewer without SRTP vs ${msCpv.median.toFixed(3)} % with it, so SRTP (Debian's NSS-backed libsrtp2) is ~${((1 - msPlainCpv.median / msCpv.median) * 100).toFixed(0)} % of the per-viewer cost. ` : '') +
          'At these packet rates the kernel work of loopback delivery (softirq on the SFU core) is a large share of the cost, and loss can end a ramp before the CPU limit.',
      });
    }
    if (msCpv && msPlainCpv && msPlainCpv.median > 0 && msCpv.median / msPlainCpv.median > 2) {
      warnings.push(
        `SRTP dominates the per-viewer cost (${(msCpv.median / msPlainCpv.median).toFixed(1)}× the plain-RTP cost, measured in this run): the worker uses Debian's libsrtp2, which is built against NSS (a profile shows NSS's softoken/freebl as ~40–45 % of the worker's time). A libsrtp built with OpenSSL would likely give far more viewers per core (not measured here). Janus links the same libsrtp2, so both SFUs pay it`,
      );
    }
    return {
      id: 'capacity',
      title: 'Viewers per origin core: mediasoup vs Janus, same stream, same machine, same run',
      figures,
      details: {
        scale: ctx.scale,
        limits: LIMITS,
        settings: s,
        pinning: { sfuCore: SFU_CORE, loadCore: LOAD_CORE, note: 'sinks, ffmpeg and the mediasoup Node driver on the load core; the benchmark process unpinned' },
        machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release(), loadAverageStart: loadStart, loadAverageEnd: loadavg()[0] },
        spreads: {
          mediasoupViewersPerCore: msVpc,
          baselineViewersPerCore: baseVpc,
          mediasoupCpuPerViewerPct: msCpv,
          baselineCpuPerViewerPct: baseCpv,
          // Where each ramp's fitted line reaches the CPU limit: less sensitive to one noisy window.
          mediasoupViewersAtCpuLimit: spread(ms.flatMap((r) => (r.summary.viewersAtCpuLimit === null ? [] : [r.summary.viewersAtCpuLimit]))),
          baselineViewersAtCpuLimit: spread(base.flatMap((r) => (r.summary.viewersAtCpuLimit === null ? [] : [r.summary.viewersAtCpuLimit]))),
        },
        packetsPerSecondPerViewer: pps,
        janusUnavailable: janusUnavailable ?? null,
        plainRtp: { mediasoupViewersPerCore: msPlainVpc, janusViewersPerCore: janusPlainVpc, mediasoupCpuPerViewerPct: msPlainCpv },
        ramps: [...runs, ...fallbackRuns].map(compactRun),
      },
      warnings,
      durationMs: Date.now() - started,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function spreadWarnings(label: string, sp: Spread): string[] {
  if (sp.n < 2) return [`${label}: one ramp only, no spread (use scale 'full' for repeated ramps)`];
  return sp.relative > SPREAD_WARN
    ? [`${label}: ramps disagree by ${(sp.relative * 100).toFixed(0)} % (${range(sp)}); the machine was noisy`]
    : [];
}

function range(sp: Spread): string {
  return sp.n > 1 ? `${sp.min}–${sp.max}` : `${sp.median}, one ramp`;
}

function medianOf(values: number[]): number | null {
  return spread(values)?.median ?? null;
}

function round(v: number, digits: number): number {
  return Number.isFinite(v) ? Number(v.toFixed(digits)) : v;
}

/** Per-ramp data for `details`, rounded so the JSON stays readable. */
function compactRun(r: TaggedRun): Record<string, unknown> {
  const pct = (v: number) => round(v * 100, 2);
  return {
    label: r.label,
    kind: r.kind,
    srtp: r.srtp,
    target: r.target,
    stopReason: r.stopReason,
    durationMs: r.durationMs,
    idleCpuPct: r.idle ? pct(r.idle.cpu) : null,
    viewersPerCore: r.summary.viewersPerCore,
    cpuPerViewerPct: r.summary.cpuPerViewer === null ? null : round(r.summary.cpuPerViewer * 100, 4),
    fitR2: r.summary.r2 === null ? null : round(r.summary.r2, 4),
    viewersAtCpuLimit: r.summary.viewersAtCpuLimit,
    saturated: r.summary.saturated,
    steps: r.steps.map((st) => ({
      viewers: st.viewers,
      cpuPct: pct(st.cpu),
      lossPct: round(st.loss * 100, 3),
      rawLossPct: round(st.rawLoss * 100, 3),
      silent: st.silentSockets,
      sinkDrops: st.sinkDrops,
      ingressDrops: st.ingressDrops,
      ppsPerViewer: round(st.ppsPerViewer, 1),
      sfuCoreBusyPct: pct(st.sfuCoreBusy),
      sfuCoreOtherPct: pct(st.sfuCoreOther),
      sfuCoreSoftirqPct: pct(st.sfuCoreSoftirq),
      loadCoreBusyPct: pct(st.loadCoreBusy),
      sinkCpuPct: pct(st.sinkCpu),
      addMs: st.addMs,
      remeasured: st.remeasured,
      passed: st.passed,
      ...(st.breaches.length ? { breaches: st.breaches } : {}),
    })),
  };
}
