/**
 * The capacity benchmark's report: the worker's build line, every ramp with its stop reason
 * (BENCHMARKS.md), the compact per-ramp JSON, number formatting.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Interval } from './confidence.js';
import type { RampCapacity } from './rampCapacity.js';
import type { RealRampRun } from './realRamp.js';

/** A ramp as the report needs it. */
export type ReportRun = RealRampRun & { kbps: number; capacity: RampCapacity };

/** The worker's build record (scripts/build-mediasoup-worker.sh writes it next to the binary). */
export function workerBuildInfo(workerBin: string): unknown {
  try {
    return JSON.parse(readFileSync(path.join(path.dirname(workerBin), 'build-info.json'), 'utf8'));
  } catch {
    return null;
  }
}

/** The worker's build, as BENCHMARKS.md states it. */
export function buildLine(info: unknown): string {
  const i = info as { mediasoup?: string; srtp?: string; meson?: string; compiler?: string; compileFlags?: string } | null;
  if (!i) return "Worker build: not recorded (a worker built before scripts/build-mediasoup-worker.sh wrote build-info.json: Debian's NSS-backed libsrtp2).";
  return `Worker build: mediasoup ${i.mediasoup}; SRTP: ${i.srtp}; meson ${i.meson}; ${i.compiler}; flags ${i.compileFlags}. Janus: Debian's package, linked to Debian's libsrtp2 (NSS); the janus+openssl-srtp ramps load the worker build's OpenSSL libsrtp2.so.1 instead.`;
}

export function janusVersion(runs: ReportRun[]): string {
  return String(runs[0]?.target.version ?? '');
}

export function median(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

export function round(v: number, digits: number): number {
  return Number.isFinite(v) ? Number(v.toFixed(digits)) : v;
}

export function fmtInterval(i: Interval | null, digits = 0): string {
  if (!i) return 'n/a';
  return i.n > 1 ? `${i.mean.toFixed(digits)} [${i.lo.toFixed(digits)}, ${i.hi.toFixed(digits)}]` : `${i.mean.toFixed(digits)} (one ramp)`;
}

export function fmtMs(v: number | null): string {
  return v === null ? 'n/a' : `${v.toFixed(0)} ms`;
}

/** Every ramp with its stop reason, for BENCHMARKS.md. */
export function rampTable(runs: ReportRun[], cpuLimit: number): string {
  const rows = runs.map((r) => {
    const last = r.steps.filter((st) => st.passed).pop();
    return `| ${r.label} | ${r.capacity.viewers ?? '–'} (${r.capacity.basis}) | ${last?.viewers ?? 0} | ${r.summary.cpuPerViewer === null ? '–' : (r.summary.cpuPerViewer * 100).toFixed(4)} | ${r.steps.length} | ${r.join.count} joins, p50 ${fmtMs(r.join.p50)} | ${r.stopReason.replace(/\|/g, '/')} |`;
  });
  return `Every ramp (capacity: viewers where the CPU fit reaches ${cpuLimit * 100} %; basis cpu-fit = the CPU limit stopped it, other-limit = loss, failed joins or silent viewers stopped it first, at its last passing step; extrapolated = nothing stopped it):

| ramp | capacity | last passing step | % core per viewer | steps | joins (request → DTLS connected) | stop reason |
|---|---|---|---|---|---|---|
${rows.join('\n')}`;
}

/** Per-ramp data for `details`, rounded so the JSON stays readable. */
export function compactRun(r: ReportRun): Record<string, unknown> {
  const pct = (v: number) => round(v * 100, 2);
  return {
    label: r.label,
    kind: r.kind,
    kbps: r.kbps,
    target: r.target,
    stopReason: r.stopReason,
    capacity: r.capacity,
    durationMs: r.durationMs,
    idleCpuPct: r.idleCpu === null ? null : pct(r.idleCpu),
    viewersLastPassing: r.summary.viewersPerCore,
    cpuPerViewerPct: r.summary.cpuPerViewer === null ? null : round(r.summary.cpuPerViewer * 100, 4),
    fitR2: r.summary.r2 === null ? null : round(r.summary.r2, 4),
    viewersAtCpuLimit: r.summary.viewersAtCpuLimit,
    join: r.join,
    failuresByCode: r.failuresByCode,
    steps: r.steps.map((st) => ({
      viewers: st.viewers,
      cpuPct: pct(st.cpu),
      processPct: pct(st.procCpu),
      softirqPct: pct(st.softirq),
      stealPct: pct(st.steal),
      otherOnCorePct: pct(st.coreOther),
      lossPct: round(st.loss * 100, 3),
      silentViewers: st.media.silentViewers,
      ppsPerViewer: round(st.media.ppsPerViewer, 1),
      kbpsPerViewer: round(st.media.kbpsPerViewer, 0),
      decryptFail: st.media.decryptFail,
      joinCpuMs: st.joinCpuMs === null ? null : round(st.joinCpuMs, 2),
      addMs: Math.round(st.addMs),
      joinFailures: st.joinFailures,
      sinkCpuPct: pct(st.sinkCpu),
      loadCoreBusyPct: pct(st.loadCoreBusy),
      remeasured: st.remeasured,
      passed: st.passed,
      ...(st.breaches.length ? { breaches: st.breaches } : {}),
    })),
  };
}
