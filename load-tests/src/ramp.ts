/**
 * How many joins should have started `elapsedMs` into a ramp of `ratePerSec`, out of `total`.
 * The first join starts at once; then one every 1/rate s.
 */
export function dueJoins(elapsedMs: number, ratePerSec: number, total: number): number {
  if (total <= 0 || elapsedMs < 0) return 0;
  return Math.min(total, Math.floor((Math.max(0, elapsedMs) * ratePerSec) / 1000) + 1);
}

/** Split `total` into `parts` counts that differ by at most one. */
export function split(total: number, parts: number): number[] {
  const n = Math.max(1, Math.floor(parts));
  const base = Math.floor(total / n);
  return Array.from({ length: n }, (_, i) => base + (i < total % n ? 1 : 0));
}
