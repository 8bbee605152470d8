/**
 * The capacity ramp's arithmetic, kept free of I/O so it can be unit-tested: the next step's
 * size, the stop rule, and the summary of a ramp (viewers per core, CPU per viewer).
 */

export interface RampLimits {
  /** Stop when the loss attributable to the SFU exceeds this share (0.01 = 1 %). */
  maxLoss: number;
  /** Stop when the SFU process uses more than this share of one core (0.85). */
  maxCpu: number;
}

export interface StepPlan {
  /** Viewers added by the first step. */
  firstStep: number;
  minStep: number;
  maxStep: number;
  /** Steps are sized to add about this much CPU (share of a core). */
  cpuPerStep: number;
  /** Never more viewers than this. */
  maxViewers: number;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Point {
  viewers: number;
  cpu: number;
}

export interface LinearFit {
  /** Share of a core per viewer. */
  slope: number;
  /** Share of a core with no viewer (receiving the stream). */
  intercept: number;
  r2: number;
}

/** Least-squares line through the points (cpu against viewers); null with fewer than 2 distinct x. */
export function linearFit(points: readonly Point[]): LinearFit | null {
  const n = points.length;
  if (n < 2) return null;
  const mx = points.reduce((a, p) => a + p.viewers, 0) / n;
  const my = points.reduce((a, p) => a + p.cpu, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const p of points) {
    sxx += (p.viewers - mx) ** 2;
    sxy += (p.viewers - mx) * (p.cpu - my);
    syy += (p.cpu - my) ** 2;
  }
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/**
 * Viewers to add next. The first step is fixed; after it, steps are sized from the CPU per
 * viewer seen so far to add about `cpuPerStep`, and shrink as the CPU limit nears (to half
 * the remaining headroom, never below a third of a normal step) so the last passing step is
 * close to the limit. Clamped to [minStep, maxStep] and to maxViewers.
 */
export function nextStepSize(points: readonly Point[], plan: StepPlan, limits: RampLimits): number {
  const current = points.reduce((m, p) => Math.max(m, p.viewers), 0);
  const room = plan.maxViewers - current;
  if (room <= 0) return 0;
  const fit = linearFit(points);
  let step = plan.firstStep;
  if (current > 0 && fit && fit.slope > 0) {
    const last = points[points.length - 1]!;
    const headroom = limits.maxCpu - last.cpu;
    const cpu = Math.min(plan.cpuPerStep, Math.max(headroom / 2, plan.cpuPerStep / 3));
    step = Math.round(cpu / fit.slope);
  } else if (current > 0) {
    step = plan.maxStep;
  }
  step = Math.max(plan.minStep, Math.min(plan.maxStep, step));
  return Math.min(step, room);
}

/** Why a measured step fails the limits (empty when it passes). */
export function limitBreaches(sample: { cpu: number; loss: number }, limits: RampLimits): string[] {
  const out: string[] = [];
  if (sample.cpu > limits.maxCpu) out.push(`cpu ${(sample.cpu * 100).toFixed(1)} % > ${limits.maxCpu * 100} %`);
  if (sample.loss > limits.maxLoss) out.push(`loss ${(sample.loss * 100).toFixed(2)} % > ${limits.maxLoss * 100} %`);
  return out;
}

export interface RampStep {
  viewers: number;
  /** SFU process CPU, share of one core. */
  cpu: number;
  /** Loss attributed to the SFU (sink-socket drops taken out). */
  loss: number;
  passed: boolean;
}

export interface RampSummary {
  /** Viewers at the last step that passed both limits (0 if none did). */
  viewersPerCore: number;
  /** Share of a core per viewer, fitted over the passing steps (and the 0-viewer point). */
  cpuPerViewer: number | null;
  intercept: number | null;
  r2: number | null;
  /** Viewers at which the fitted line reaches the CPU limit. */
  viewersAtCpuLimit: number | null;
  /** true if a limit stopped the ramp; false if it ran out of viewers or time first (a lower bound). */
  saturated: boolean;
}

export function summarizeRamp(steps: readonly RampStep[], limits: RampLimits, saturated: boolean): RampSummary {
  let viewersPerCore = 0;
  for (const s of steps) {
    if (!s.passed) break;
    viewersPerCore = s.viewers;
  }
  const fitPoints = steps.filter((s) => s.passed);
  const fit = linearFit(fitPoints);
  return {
    viewersPerCore,
    cpuPerViewer: fit?.slope ?? null,
    intercept: fit?.intercept ?? null,
    r2: fit?.r2 ?? null,
    viewersAtCpuLimit: fit && fit.slope > 0 ? Math.round((limits.maxCpu - fit.intercept) / fit.slope) : null,
    saturated,
  };
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max − min) / median, 0 with one value. */
  relative: number;
  n: number;
}

export function spread(values: readonly number[]): Spread | null {
  if (values.length === 0) return null;
  const m = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return { median: m, min, max, relative: m > 0 ? (max - min) / m : 0, n: values.length };
}
