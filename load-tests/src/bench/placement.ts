import { MemoryTopologyStore, RedisTopologyStore, runPlacementSim, type PlacementSimResult } from '@cascade/controller';
import { silentLogger } from '@cascade/protocol';
import { startRedis } from '@cascade/testing';
import type { BenchContext, BenchResult } from './types.js';

/**
 * Controller placements per second: the same seeded simulation (mixed relay population,
 * viewers joining and leaving) against the in-process store and against Redis (a private
 * redis-server on loopback). Figure: Redis; baseline: in-process.
 */
export async function runPlacementBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const relays = ctx.scale === 'full' ? 1000 : 200;
  const viewers = ctx.scale === 'full' ? 100_000 : 10_000;
  const redisViewers = ctx.scale === 'full' ? 30_000 : 5_000;
  const sim = (store: MemoryTopologyStore | RedisTopologyStore, joins: number) =>
    runPlacementSim(store, { relays, joins, maxChildren: 3, seed: 42 });
  const mem = await sim(new MemoryTopologyStore(), viewers);
  const redis = await startRedis();
  let red: PlacementSimResult;
  try {
    const store = await RedisTopologyStore.connect({ url: redis.url }, { logger: silentLogger });
    try {
      red = await sim(store, redisViewers);
    } finally {
      await store.close();
    }
  } finally {
    await redis.stop();
  }
  ctx.log(`placement: memory ${Math.round(mem.placementsPerSec)}/s, redis ${Math.round(red.placementsPerSec)}/s`);
  return {
    id: 'placement',
    title: 'Controller placements per second',
    figures: [
      {
        name: 'placements per second, Redis store (one Lua round trip each)',
        value: Math.round(red.placementsPerSec),
        unit: 'placements/s',
        baseline: { name: 'in-process store', value: Math.round(mem.placementsPerSec), unit: 'placements/s' },
        ratio: red.placementsPerSec / mem.placementsPerSec,
        note: `${relays} relays of mixed capacity, K = 3; ${viewers} joins in process, ${redisViewers} on Redis, with leaves. Higher is better. Max depth ${mem.maxDepth} (bound ${mem.depthBound}, shallowest possible ${mem.minimalDepth}); origin child relays ${mem.originChildren} (K = 3); violations ${mem.violations.length + red.violations.length}.`,
      },
    ],
    details: { memory: { ...mem, violations: mem.violations.length }, redis: { ...red, violations: red.violations.length } },
    warnings: [...mem.violations, ...red.violations].slice(0, 5).map((v) => `violation: ${v}`),
    durationMs: Date.now() - started,
  };
}
