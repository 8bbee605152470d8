/**
 * The capacity benchmark's figures: per bitrate, Cascade's ramps against Janus's (and the
 * variants') as means with intervals, the JSON behind them, and the warnings that weaken them.
 */
import type { BenchFigure } from '../types.js';
import { meanInterval, ratioInterval, type Interval, type RatioInterval } from './confidence.js';
import type { RampCapacity } from './rampCapacity.js';
import type { RealRampRun } from './realRamp.js';
import { fmtInterval, fmtMs, janusVersion, median, round } from './report.js';

/**
 * janusSsl: Janus on the worker build's OpenSSL libsrtp2 (LD_LIBRARY_PATH), the like-for-like
 * baseline. cascadeNoTwcc: Cascade with viewers that do not negotiate transport-cc, what
 * leaving it out of the viewers' capabilities in sfu/ would give (see the report).
 */
export type Kind = 'cascade' | 'cascadeNoTwcc' | 'janus' | 'janusSsl';
export type Run = RealRampRun & { kind: Kind; kbps: number; capacity: RampCapacity };

/** Ramps whose viewers-at-limit disagree by more than this (relative CI half-width) get a warning. */
const CI_WARN = 0.15;

/** One bitrate's ramps per server, and the intervals its figures are made of. */
interface AtBitrate {
  label: string;
  cascade: Run[];
  janus: Run[];
  noTwcc: Run[];
  janusSsl: Run[];
  cCap: Interval | null;
  jCap: Interval | null;
  ratio: RatioInterval | null;
  cCpv: Interval | null;
  jCpv: Interval | null;
  cUs: Interval | null;
  jUs: Interval | null;
  cJoin: Interval | null;
  jJoin: Interval | null;
  pps: number | null;
  kbpsSeen: number | null;
  ntCap: Interval | null;
  ntRatio: RatioInterval | null;
  jsCap: Interval | null;
  sslRatio: RatioInterval | null;
}

/**
 * Every bitrate's figures and JSON, in the order of the settings. A bitrate without a Cascade
 * ramp gets a warning instead (warnings is appended to, in report order).
 */
export function capacityFigures(runs: Run[], bitratesKbps: number[], joinRatePerSec: number, maxCpu: number, warnings: string[]): { figures: BenchFigure[]; perBitrate: Record<string, unknown>[] } {
  const figures: BenchFigure[] = [];
  const perBitrate: Record<string, unknown>[] = [];
  for (const kbps of bitratesKbps) {
    const b = atBitrate(runs, kbps);
    if (!b) {
      warnings.push(`${kbps} kbit/s: no Cascade ramp completed`);
      continue;
    }
    figures.push(capacityFigure(b, maxCpu));
    if (b.ntCap) figures.push(noTwccFigure(b, b.ntCap));
    if (b.jsCap) figures.push(sameSrtpFigure(b, b.jsCap));
    figures.push(perPacketFigure(b), perJoinFigure(b, joinRatePerSec));
    warnings.push(...spreadWarnings(b));
    perBitrate.push(bitrateDetails(b, kbps));
  }
  return { figures, perBitrate };
}

/** What weakens each ramp's figure: an extrapolated capacity, its own notes, a server core shared with others. */
export function rampWarnings(runs: Run[]): string[] {
  const warnings: string[] = [];
  for (const r of runs) {
    if (r.capacity.basis === 'extrapolated') warnings.push(`${r.label} stopped before any limit (${r.stopReason}): its capacity ${r.capacity.viewers ?? '–'} is the CPU fit extrapolated`);
    warnings.push(...r.notes);
    const other = Math.max(0, ...r.steps.map((st) => st.coreOther));
    if (other > 0.1) warnings.push(`${r.label}: up to ${(other * 100).toFixed(0)} % of the server core went to other processes (other engineers' jobs)`);
    const steal = Math.max(0, ...r.steps.map((st) => st.steal));
    if (steal > 0.05) warnings.push(`${r.label}: up to ${(steal * 100).toFixed(0)} % steal on the server core (the hypervisor ran something else), counted as the server's CPU`);
  }
  return warnings;
}

/** The ramps at one bitrate reduced to intervals, or null when no Cascade ramp completed there (nothing to compare). */
function atBitrate(runs: Run[], kbps: number): AtBitrate | null {
  const of = (kind: Kind) => runs.filter((r) => r.kind === kind && r.kbps === kbps);
  const cascade = of('cascade');
  const janus = of('janus');
  if (cascade.length === 0) return null;
  const noTwcc = of('cascadeNoTwcc');
  const janusSsl = of('janusSsl');
  return {
    label: `${(kbps / 1000).toFixed(1)} Mbit/s`,
    cascade,
    janus,
    noTwcc,
    janusSsl,
    cCap: meanInterval(capacities(cascade)),
    jCap: meanInterval(capacities(janus)),
    ratio: ratioInterval(capacities(cascade), capacities(janus)),
    cCpv: cpuPerViewer(cascade),
    jCpv: cpuPerViewer(janus),
    cUs: usPerPacket(cascade),
    jUs: usPerPacket(janus),
    cJoin: joinCost(cascade),
    jJoin: joinCost(janus),
    pps: median(runs.filter((r) => r.kbps === kbps).flatMap((r) => r.steps.map((st) => st.media.ppsPerViewer))),
    kbpsSeen: median(runs.filter((r) => r.kbps === kbps).flatMap((r) => r.steps.map((st) => st.media.kbpsPerViewer))),
    ntCap: meanInterval(capacities(noTwcc)),
    ntRatio: ratioInterval(capacities(noTwcc), capacities(janus)),
    jsCap: meanInterval(capacities(janusSsl)),
    sslRatio: ratioInterval(capacities(cascade), capacities(janusSsl)),
  };
}

/** The ramps' capacities, leaving out those that found none. */
function capacities(rs: Run[]): number[] {
  return rs.flatMap((r) => (r.capacity.viewers === null ? [] : [r.capacity.viewers]));
}

/** Server CPU per viewer (% of a core), the slope of each ramp's fit. */
function cpuPerViewer(rs: Run[]): Interval | null {
  return meanInterval(rs.flatMap((r) => (r.summary.cpuPerViewer === null ? [] : [r.summary.cpuPerViewer * 100])));
}

/** Server CPU per forwarded packet (µs): the CPU per viewer over the packets each viewer received. */
function usPerPacket(rs: Run[]): Interval | null {
  return meanInterval(
    rs.flatMap((r) => {
      const pps = median(r.steps.filter((st) => st.passed).map((st) => st.media.ppsPerViewer));
      return r.summary.cpuPerViewer !== null && pps ? [(r.summary.cpuPerViewer / pps) * 1e6] : [];
    }),
  );
}

/** Server CPU per join (ms), over every step that measured it. */
function joinCost(rs: Run[]): Interval | null {
  return meanInterval(rs.flatMap((r) => r.steps.flatMap((st) => (st.joinCpuMs === null ? [] : [st.joinCpuMs]))));
}

/** The headline: viewers per server core, Cascade against Janus as Debian ships it. */
function capacityFigure(b: AtBitrate, maxCpu: number): BenchFigure {
  const { label, janus, cCap, jCap, ratio, pps, kbpsSeen } = b;
  return {
    name: `viewers per server core at ${label} (audio + video, WebRTC viewers through each server's signalling): Cascade origin`,
    value: round(cCap!.mean, 0),
    unit: 'viewers',
    baseline: { name: `Janus ${janusVersion(janus)} Streaming plugin`, value: round(jCap?.mean ?? NaN, 0), unit: 'viewers' },
    ratio: ratio?.ratio ?? NaN,
    note:
      `Higher is better; ratio = Cascade / Janus. Where the server's CPU (processes + softirq + steal of its core), fitted against viewers, reaches ${maxCpu * 100} % of a core. ` +
      `Cascade ${fmtInterval(cCap)}, Janus ${fmtInterval(jCap)} (mean, 95 % t interval over ${cCap?.n ?? 0} and ${jCap?.n ?? 0} ramps); ` +
      `ratio ${ratio ? `${ratio.ratio.toFixed(2)} [${ratio.lo.toFixed(2)}, ${ratio.hi.toFixed(2)}] (bootstrap, ${ratio.resamples} resamples)` : 'n/a'}. ` +
      `~${kbpsSeen?.toFixed(0) ?? '?'} kbit/s and ~${pps?.toFixed(0) ?? '?'} packets/s per viewer measured at the sinks.`,
  };
}

/** The variant without transport-cc: what leaving it out for viewers would gain. */
function noTwccFigure(b: AtBitrate, ntCap: Interval): BenchFigure {
  const { label, janus, cCap, jCap, ntRatio } = b;
  return {
    name: `viewers per server core at ${label}, Cascade with viewers that do not negotiate transport-cc`,
    value: round(ntCap.mean, 0),
    unit: 'viewers',
    baseline: { name: `Janus ${janusVersion(janus)} Streaming plugin`, value: round(jCap?.mean ?? NaN, 0), unit: 'viewers' },
    ratio: ntRatio?.ratio ?? NaN,
    note:
      `Higher is better; ratio = Cascade / Janus. The same origin, the sinks leaving transport-wide congestion control out (as a viewer does when the server does not offer it): mediasoup then runs no send-side bandwidth estimation per viewer, which single-layer consumers do not use. ` +
      `${fmtInterval(ntCap)} over ${ntCap.n} ramps vs ${fmtInterval(cCap)} with it; ratio to Janus ${ntRatio ? `${ntRatio.ratio.toFixed(2)} [${ntRatio.lo.toFixed(2)}, ${ntRatio.hi.toFixed(2)}]` : 'n/a'}.`,
  };
}

/** Like for like: Janus on the worker build's OpenSSL libsrtp2, so the SRTP library is not the difference. */
function sameSrtpFigure(b: AtBitrate, jsCap: Interval): BenchFigure {
  const { label, janusSsl, cCap, sslRatio } = b;
  return {
    name: `viewers per server core at ${label}, both servers on the same OpenSSL libsrtp2: Cascade origin`,
    value: round(cCap!.mean, 0),
    unit: 'viewers',
    baseline: { name: `Janus ${janusVersion(janusSsl)} Streaming plugin with the worker build's libsrtp2 (LD_LIBRARY_PATH)`, value: round(jsCap.mean, 0), unit: 'viewers' },
    ratio: sslRatio?.ratio ?? NaN,
    note:
      `Higher is better; ratio = Cascade / Janus on the same SRTP library (Debian's Janus links Debian's NSS-backed libsrtp2, the row above). ` +
      `Janus ${fmtInterval(jsCap)} over ${jsCap.n} ramps; ratio ${sslRatio ? `${sslRatio.ratio.toFixed(2)} [${sslRatio.lo.toFixed(2)}, ${sslRatio.hi.toFixed(2)}]` : 'n/a'}.`,
  };
}

/** The steady-state cost per forwarded packet, which does not depend on the bitrate's packet rate. */
function perPacketFigure(b: AtBitrate): BenchFigure {
  const { label, cUs, jUs, cCpv, jCpv } = b;
  return {
    name: `server CPU per forwarded packet at ${label}: Cascade origin`,
    value: round(cUs?.mean ?? NaN, 2),
    unit: 'µs per packet',
    baseline: { name: 'Janus Streaming plugin', value: round(jUs?.mean ?? NaN, 2), unit: 'µs per packet' },
    ratio: cUs && jUs && cUs.mean > 0 ? jUs.mean / cUs.mean : NaN,
    note:
      `Lower is better; ratio = Janus / Cascade (how many times cheaper Cascade is). Slope of the server's CPU against viewers over the passing steps, divided by the packets per second each viewer received. ` +
      `Cascade ${fmtInterval(cUs, 2)} µs (${fmtInterval(cCpv, 4)} % of a core per viewer), Janus ${fmtInterval(jUs, 2)} µs (${fmtInterval(jCpv, 4)} % per viewer).`,
  };
}

/** The cost of a join (handshakes, signalling), kept apart from the steady state. */
function perJoinFigure(b: AtBitrate, joinRatePerSec: number): BenchFigure {
  const { label, cascade, janus, cJoin, jJoin } = b;
  return {
    name: `server CPU per join at ${label} (ICE, DTLS handshake, signalling, consumers): Cascade origin`,
    value: round(cJoin?.mean ?? NaN, 2),
    unit: 'ms of CPU per join',
    baseline: { name: 'Janus Streaming plugin', value: round(jJoin?.mean ?? NaN, 2), unit: 'ms of CPU per join' },
    ratio: cJoin && jJoin && cJoin.mean > 0 ? jJoin.mean / cJoin.mean : NaN,
    note:
      `Lower is better; ratio = Janus / Cascade. The server's CPU while a step's viewers joined (at ${joinRatePerSec} joins/s) above its steady state, per join, kept apart from the steady-state figures above. ` +
      `Cascade ${fmtInterval(cJoin, 2)} ms over ${cJoin?.n ?? 0} steps, Janus ${fmtInterval(jJoin, 2)} ms over ${jJoin?.n ?? 0} steps. ` +
      `Join to DTLS connected at the sink, p50: Cascade ${fmtMs(median(cascade.map((r) => r.join.p50)))}, Janus ${fmtMs(median(janus.map((r) => r.join.p50)))} (DTLS alone ${fmtMs(median(cascade.map((r) => r.join.dtlsP50)))} and ${fmtMs(median(janus.map((r) => r.join.dtlsP50)))}).`,
  };
}

/** Repeated ramps that disagree widely: the machine was noisy, the means are weaker than they look. */
function spreadWarnings(b: AtBitrate): string[] {
  const { label, cCap, jCap } = b;
  const warnings: string[] = [];
  if (cCap && cCap.n > 1 && (cCap.hi - cCap.lo) / 2 / cCap.mean > CI_WARN) warnings.push(`${label}: Cascade's ramps disagree (95 % interval ±${(((cCap.hi - cCap.lo) / 2 / cCap.mean) * 100).toFixed(0)} %): the machine was noisy`);
  if (jCap && jCap.n > 1 && (jCap.hi - jCap.lo) / 2 / jCap.mean > CI_WARN) warnings.push(`${label}: Janus's ramps disagree (95 % interval ±${(((jCap.hi - jCap.lo) / 2 / jCap.mean) * 100).toFixed(0)} %): the machine was noisy`);
  return warnings;
}

/** One bitrate's numbers for the JSON (the variants only where they ran). */
function bitrateDetails(b: AtBitrate, kbps: number): Record<string, unknown> {
  return {
    kbps,
    cascade: { capacity: b.cCap, cpuPerViewerPct: b.cCpv, usPerPacket: b.cUs, joinCpuMs: b.cJoin },
    janus: { capacity: b.jCap, cpuPerViewerPct: b.jCpv, usPerPacket: b.jUs, joinCpuMs: b.jJoin },
    ...(b.ntCap ? { cascadeNoTwcc: { capacity: b.ntCap, cpuPerViewerPct: cpuPerViewer(b.noTwcc), usPerPacket: usPerPacket(b.noTwcc) }, ratioNoTwcc: b.ntRatio } : {}),
    ...(b.jsCap ? { janusOpensslSrtp: { capacity: b.jsCap, cpuPerViewerPct: cpuPerViewer(b.janusSsl), usPerPacket: usPerPacket(b.janusSsl) }, ratioOpensslSrtp: b.sslRatio } : {}),
    ratio: b.ratio,
    ppsPerViewer: b.pps,
    kbpsPerViewer: b.kbpsSeen,
  };
}
