import { describe, expect, it } from 'vitest';
import { MemoryTopologyStore } from '../src/store/MemoryTopologyStore.js';
import { depthBound, minimalDepth, runPlacementSim, seededRandom, type SimRelaySpec } from '../src/sim/placementSim.js';

describe('placement simulation (MemoryTopologyStore)', () => {
  it('1000 mixed relays and 100000 joins: the origin sends at most K copies, the depth bound and every capacity hold', async () => {
    const store = new MemoryTopologyStore();
    const K = 3;
    // The origin serves no viewer itself here: everything it sends goes to its child relays.
    const r = await runPlacementSim(store, { relays: 1000, joins: 100_000, maxChildren: K, seed: 42, originMaxViewers: 0 });
    // A figure to read, never to assert on (it depends on the machine).
    console.log(
      `memory store: ${r.placementsPerSec} placements/s (${r.operationsPerSec} ops/s), ${r.placements} placed, ${r.rejected} rejected, ` +
        `${r.relaysInTree} relays in the tree, max depth ${r.maxDepth} (bound ${r.depthBound}, minimal ${r.minimalDepth})`,
    );
    expect(r.violations).toEqual([]);
    expect(r.placements + r.rejected).toBe(100_000);
    expect(r.originEgress).toBeLessThanOrEqual(K);
    expect(r.originChildren).toBeGreaterThan(0);
    expect(r.maxChildrenPerNode).toBeLessThanOrEqual(K);
    expect(r.maxDepth).toBeLessThanOrEqual(r.depthBound);
    // The run needed (nearly) every relay, so the bound is actually exercised.
    expect(r.relaysInTree).toBeGreaterThan(900);
    await store.close();
  });

  it('an origin with a viewer budget of its own sends its budget plus at most K relay copies', async () => {
    const r = await runPlacementSim(new MemoryTopologyStore(), { relays: 200, joins: 20_000, maxChildren: 3, seed: 7, originMaxViewers: 50, leaveProbability: 0 });
    expect(r.violations).toEqual([]);
    expect(r.originChildren).toBeLessThanOrEqual(3);
    expect(r.originEgress).toBe(50 + r.originChildren);
  });

  it.each([2, 4, 8])('builds the shallowest tree the attached relays allow, with K = %i', async (K) => {
    const r = await runPlacementSim(new MemoryTopologyStore(), { relays: 300, joins: 30_000, maxChildren: K, seed: K, leaveProbability: 0.1 });
    expect(r.violations).toEqual([]);
    expect(r.maxDepth).toBe(r.minimalDepth);
    expect(r.maxDepth).toBeLessThanOrEqual(r.depthBound);
  });

  it('rejects viewers only when no relay in the tree has room and none can be added', async () => {
    // Far more joins than capacity: the simulation records a violation for any other rejection.
    const r = await runPlacementSim(new MemoryTopologyStore(), { relays: 100, joins: 20_000, leaveProbability: 0.05 });
    expect(r.rejected).toBeGreaterThan(0);
    expect(r.violations).toEqual([]);
  });

  it('meets the bound only when the population allows it: volunteers with at most one child slot make it unreachable', async () => {
    // One dedicated relay in twenty; volunteers feed at most one child. No tree of these relays
    // is within ceil(log_K(relays)) + 1, and the policy still builds the shallowest one.
    const thin = (i: number, random: () => number, K: number): SimRelaySpec =>
      i % 20 === 0
        ? { volunteer: false, maxChildren: 2 * K, maxViewers: 300 }
        : { volunteer: true, maxChildren: Math.floor(random() * 2), maxViewers: 20 + Math.floor(random() * 41) };
    const r = await runPlacementSim(new MemoryTopologyStore(), { relays: 300, joins: 15_000, maxChildren: 3, population: thin, seed: 3 });
    console.log(`thin population: max depth ${r.maxDepth}, minimal ${r.minimalDepth}, bound ${r.depthBound}, ${r.relaysInTree} relays in the tree`);
    expect(r.violations).toEqual([]);
    expect(r.minimalDepth).toBeGreaterThan(r.depthBound);
    expect(r.maxDepth).toBe(r.minimalDepth);
  });

  it('gives the same placements for the same seed', async () => {
    const options = { relays: 50, joins: 3000, seed: 9 };
    const one = await runPlacementSim(new MemoryTopologyStore(), options);
    const two = await runPlacementSim(new MemoryTopologyStore(), options);
    const figures = ({ elapsedMs, operationsPerSec, placementsPerSec, ...rest }: typeof one) => rest;
    expect(figures(two)).toEqual(figures(one));
  });
});

describe('placement simulation helpers', () => {
  it('depthBound() is ceil(log_K(relays)) + 1, exact at powers of K', () => {
    expect(depthBound(1000, 3)).toBe(8);
    expect(depthBound(729, 3)).toBe(7);
    expect(depthBound(730, 3)).toBe(8);
    expect(depthBound(1000, 10)).toBe(4);
    expect(depthBound(1, 4)).toBe(1);
  });

  it('minimalDepth() fills level by level, largest fan-out first', () => {
    expect(minimalDepth(2, [2, 2, 0, 0, 0, 0])).toBe(2);
    expect(minimalDepth(2, [0, 0, 2, 2, 0, 0])).toBe(2);
    expect(minimalDepth(1, [1, 1, 1])).toBe(3);
    expect(minimalDepth(1, [0, 0])).toBe(Infinity);
    expect(minimalDepth(3, [])).toBe(0);
  });

  it('seededRandom() repeats its sequence for a seed and stays in [0, 1)', () => {
    const a = seededRandom(5);
    const b = seededRandom(5);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(seededRandom(6)()).not.toBe(xs[0]);
  });
});
