import { generateTicketKey, MemoryTopologyStore, RedisTopologyStore, runPlacementSim, TicketSigner, type PlacementSimResult } from '@cascade/controller';
import { silentLogger } from '@cascade/protocol';
import { startRedis } from '@cascade/testing';
import type { BenchContext, BenchResult } from './types.js';

/**
 * Controller placements per second: the same seeded simulation (mixed relay population,
 * viewers joining and leaving) against the in-process store and against Redis (a private
 * redis-server on loopback). Figure: Redis; baseline: in-process, same workload.
 */
export async function runPlacementBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const relays = ctx.scale === 'full' ? 1000 : 200;
  // The same workload on both stores for the ratio; the in-process one also runs the 100,000 joins.
  const joins = ctx.scale === 'full' ? 30_000 : 5_000;
  const bigJoins = ctx.scale === 'full' ? 100_000 : 10_000;
  const sim = (store: MemoryTopologyStore | RedisTopologyStore, n: number) => runPlacementSim(store, { relays, joins: n, maxChildren: 3, seed: 42 });
  const mem = await sim(new MemoryTopologyStore(), joins);
  const big = await sim(new MemoryTopologyStore(), bigJoins);
  const redis = await startRedis();
  let red: PlacementSimResult;
  try {
    const store = await RedisTopologyStore.connect({ url: redis.url }, { logger: silentLogger });
    try {
      red = await sim(store, joins);
    } finally {
      await store.close();
    }
  } finally {
    await redis.stop();
  }
  // What the controller adds to each placement: the ES256 ticket for the chosen node.
  const signer = new TicketSigner(generateTicketKey(), 60);
  const signs = ctx.scale === 'full' ? 5000 : 1000;
  const t0 = performance.now();
  for (let i = 0; i < signs; i++) signer.viewer({ stream: 'bench', node: 'relay-1' });
  const signsPerSec = Math.round((signs / (performance.now() - t0)) * 1000);
  ctx.log(`placement: memory ${mem.operationsPerSec}/s, redis ${red.operationsPerSec}/s (decisions); ticket signing ${signsPerSec}/s`);
  const violations = [...mem.violations, ...big.violations, ...red.violations];
  return {
    id: 'placement',
    title: 'Controller placements per second',
    figures: [
      {
        name: 'store decisions per second (a placement or a release), Redis store (one Lua round trip each)',
        value: red.operationsPerSec,
        unit: 'decisions/s',
        baseline: { name: 'in-process store, same workload', value: mem.operationsPerSec, unit: 'decisions/s' },
        ratio: red.operationsPerSec / mem.operationsPerSec,
        note: `${relays} relays of mixed capacity, K = 3, ${joins} joins with leaves on each store (placements alone: Redis ${red.placementsPerSec}/s, in process ${mem.placementsPerSec}/s). Higher is better. Each placement through the controller also signs an ES256 ticket: ${signsPerSec} signatures/s on one core, so in process the signature, not the decision, bounds the controller. ${bigJoins} joins in process: max depth ${big.maxDepth} (bound ${big.depthBound}, shallowest possible ${big.minimalDepth}); origin child relays ${big.originChildren} (K = 3); violations ${violations.length}.`,
      },
    ],
    details: {
      memory: { ...mem, violations: mem.violations.length },
      memoryBig: { ...big, violations: big.violations.length },
      redis: { ...red, violations: red.violations.length },
      ticketSignaturesPerSec: signsPerSec,
    },
    warnings: violations.slice(0, 5).map((v) => `violation: ${v}`),
    durationMs: Date.now() - started,
  };
}
