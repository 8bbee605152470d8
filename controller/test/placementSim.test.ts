import { describe, expect, it } from 'vitest';
import { MemoryTopologyStore } from '../src/store/MemoryTopologyStore.js';
import { depthBound, minimalDepth, runPlacementSim, seededRandom } from '../src/sim/placementSim.js';

describe('placement simulation (MemoryTopologyStore)', () => {
  it('1000 mixed relays and 100000 joins stay within K at the origin, the depth bound and every capacity', async () => {
    const store = new MemoryTopologyStore();
    const K = 3;
    const r = await runPlacementSim(store, { relays: 1000, joins: 100_000, maxChildren: K, seed: 42 });
    // A figure to read, never to assert on (it depends on the machine).
    console.log(
      `memory store: ${r.placementsPerSec} placements/s (${r.operationsPerSec} ops/s), ${r.placements} placed, ${r.rejected} rejected, ` +
        `${r.relaysInTree} relays in the tree, max depth ${r.maxDepth} (bound ${r.depthBound}, minimal ${r.minimalDepth})`,
    );
    expect(r.violations).toEqual([]);
    expect(r.placements + r.rejected).toBe(100_000);
    expect(r.originChildren).toBeLessThanOrEqual(K);
    expect(r.maxChildrenPerNode).toBeLessThanOrEqual(K);
    expect(r.maxDepth).toBeLessThanOrEqual(r.depthBound);
    // The relays the run needed are (nearly) all of them, so the bound is actually exercised.
    expect(r.relaysInTree).toBeGreaterThan(900);
    await store.close();
  });
});
