import type { RampSummary } from './ramp.js';

/** How a ramp's capacity was found, for the report. */
export type CapacityBasis =
  /** The CPU limit ended the ramp: where the fitted CPU line reaches the limit. */
  | 'cpu-fit'
  /** Another limit (loss, failed joins, silent viewers) ended it first: its last passing step. */
  | 'other-limit'
  /** Nothing ended it (time, cap, load generator): the fitted line extrapolated, a weaker figure. */
  | 'extrapolated';

export interface RampCapacity {
  viewers: number | null;
  basis: CapacityBasis;
}

/**
 * A ramp's capacity: viewers where the server's CPU (fitted over the passing steps) reaches
 * the limit. A ramp that another limit stopped earlier counts its last passing step instead,
 * since the server broke there; one that no limit stopped extrapolates the fit and says so.
 */
export function rampCapacity(summary: RampSummary, stoppedByCpu: boolean): RampCapacity {
  const fit = summary.viewersAtCpuLimit;
  if (summary.saturated && stoppedByCpu) return { viewers: fit ?? summary.viewersPerCore, basis: 'cpu-fit' };
  if (summary.saturated) {
    const last = summary.viewersPerCore;
    return { viewers: fit === null ? last : Math.min(fit, last), basis: 'other-limit' };
  }
  return { viewers: fit, basis: 'extrapolated' };
}
