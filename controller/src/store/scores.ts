/**
 * Sort keys of the placement indexes. Both stores use these formulas (the Redis Lua scripts
 * carry a copy; the store contract tests check both agree). Lower is better.
 */
export const FULL = 1e13;

/** Serving candidates of a stream: shallowest first, then least loaded; full ones last. */
export function serveScore(depth: number, viewers: number, maxViewers: number): number {
  const full = viewers >= maxViewers ? FULL : 0;
  return full + depth * 1e9 + Math.floor((Math.min(viewers, maxViewers) / Math.max(1, maxViewers)) * 1e6);
}

/** Parent candidates of a stream: shallowest first, dedicated before volunteers, fewest children. */
export function parentScore(depth: number, volunteer: boolean, children: number, full: boolean): number {
  return (full ? FULL : 0) + depth * 1e9 + (volunteer ? 1e8 : 0) + children;
}

/**
 * Relays to add to a tree: dedicated before volunteers (volunteers end up as leaves), then
 * the ones able to feed most children (keeps the tree shallow), then least loaded.
 */
export function relayScore(volunteer: boolean, maxChildren: number, viewers: number, maxViewers: number): number {
  const full = viewers >= maxViewers ? FULL : 0;
  return full + (volunteer ? 1e9 : 0) + (1000 - Math.min(maxChildren, 999)) * 1e5 + Math.floor((viewers / Math.max(1, maxViewers)) * 1e4);
}

/**
 * Placements count a viewer before it arrives, heartbeats count the viewers that did. A
 * report below the stored count is believed only once it has stayed below for this long
 * (ms): until then the difference is viewers still connecting. A report above it is
 * believed at once (the store lost state, or viewers came with older tickets).
 */
export const RECONCILE_GRACE_MS = 10_000;

export function reconcileCount(stored: number, reported: number, overSince: number, now: number): { value: number; overSince: number } {
  if (reported >= stored) return { value: reported, overSince: 0 };
  if (overSince === 0) return { value: stored, overSince: now };
  if (now - overSince >= RECONCILE_GRACE_MS) return { value: reported, overSince: 0 };
  return { value: stored, overSince };
}
