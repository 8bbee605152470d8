/**
 * What both topology stores share: the sort keys of the placement indexes (lower is better),
 * the reconciliation of viewer counts, and their constants. The Redis Lua script carries its
 * own copy of the formulas (the store contract tests check both agree); the constants are
 * written into it from here (redisScript.ts).
 */

/** Added to a score to mark its node full: scans stop at the first score at or above it. */
export const FULL = 1e13;

/**
 * "No bound" for a limit both stores take (TopologyStoreOptions.maxChildren). A number rather
 * than Infinity because the Redis store passes it to Lua as a script argument.
 */
export const NO_LIMIT = -1;

/** Whether `count` is below `limit` (NO_LIMIT: always). */
export function belowLimit(count: number, limit: number): boolean {
  return limit === NO_LIMIT || count < limit;
}

/** Tree entries a node stopped reporting are kept this long after they were created (ms),
 *  so that a heartbeat sent before an assignment arrived does not undo it. */
export const HEARTBEAT_PRUNE_GRACE_MS = 5000;

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
