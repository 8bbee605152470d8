import { generateTicketKey, MemoryTopologyStore, RedisTopologyStore, runPlacementSim, TicketSigner, type PlacementSimResult } from '@cascade/controller';
import { silentLogger } from '@cascade/protocol';
import { startRedis } from '@cascade/testing';
import { runPlacementLoad, type PlacementLoadResult } from './placementLoad.js';
import { runTree, type TreeRunResult } from './treeRun.js';
import type { BenchContext, BenchFigure, BenchResult } from './types.js';

/** Decisions in flight at once: one caller, a busy controller, a burst. */
const IN_FLIGHT = [1, 16, 128];
/** The join storm's length: its viewers are asked for over this long. */
const STORM_SECONDS = 10;

/** The run's size. */
interface Plan {
  relays: number;
  /** Joins of the simulation on both stores (for the ratio), and on the in-process one alone. */
  joins: number;
  bigJoins: number;
  /** Tickets signed to time signing. */
  signs: number;
  /** Decisions per concurrency level. */
  loadDecisions: number;
  stormViewers: number;
}

/** The seeded simulation on each store. */
interface Sims {
  mem: PlacementSimResult;
  big: PlacementSimResult;
  red: PlacementSimResult;
}

/** Per level of decisions in flight: the Redis store with auto-pipelining and without, and the in-process store. */
type Concurrency = { inFlight: number; pipelined: PlacementLoadResult; plain: PlacementLoadResult; memory: PlacementLoadResult }[];

/** The join storm on each store; not both when one failed. */
interface Storms {
  redis: TreeRunResult | undefined;
  memory: TreeRunResult | undefined;
  /** Why they did not both run. */
  warnings: string[];
}

/**
 * Controller placements per second: the same seeded simulation (mixed relay population,
 * viewers joining and leaving) against the in-process store and against Redis (a private
 * redis-server on loopback). Figure: Redis; baseline: in-process, same workload. Then the
 * decisions with 1, 16 and 128 in flight (with and without auto-pipelining), and a join storm
 * of sink viewers through an origin and relays (Redis store vs in-process store).
 */
export async function runPlacementBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const plan = planFor(ctx.scale);
  const sims = await simulate(plan);
  const signsPerSec = ticketSignRate(plan.signs);
  ctx.log(`placement: memory ${sims.mem.operationsPerSec}/s, redis ${sims.red.operationsPerSec}/s (decisions); ticket signing ${signsPerSec}/s`);
  const concurrency = await measureConcurrency(plan, ctx.log);
  const storms = await runStorms(plan, ctx.log);
  return placementResult(plan, sims, signsPerSec, concurrency, storms, started);
}

/** The run's size by scale. */
function planFor(scale: BenchContext['scale']): Plan {
  const full = scale === 'full';
  return {
    relays: full ? 1000 : 200,
    // The same workload on both stores for the ratio; the in-process one also runs the 100,000 joins.
    joins: full ? 30_000 : 5_000,
    bigJoins: full ? 100_000 : 10_000,
    signs: full ? 5000 : 1000,
    loadDecisions: full ? 20_000 : 4000,
    stormViewers: full ? 500 : 100,
  };
}

/** The same seeded simulation on the in-process store (also at the big size) and on a private Redis. */
async function simulate(plan: Plan): Promise<Sims> {
  const sim = (store: MemoryTopologyStore | RedisTopologyStore, n: number) => runPlacementSim(store, { relays: plan.relays, joins: n, maxChildren: 3, seed: 42 });
  const mem = await sim(new MemoryTopologyStore(), plan.joins);
  const big = await sim(new MemoryTopologyStore(), plan.bigJoins);
  const redis = await startRedis();
  let red: PlacementSimResult;
  try {
    const store = await RedisTopologyStore.connect({ url: redis.url }, { logger: silentLogger });
    try {
      red = await sim(store, plan.joins);
    } finally {
      await store.close();
    }
  } finally {
    await redis.stop();
  }
  return { mem, big, red };
}

/** ES256 ticket signatures per second: what the controller adds to each placement (a ticket for the chosen node). */
function ticketSignRate(signs: number): number {
  const signer = new TicketSigner(generateTicketKey(), 60);
  const t0 = performance.now();
  for (let i = 0; i < signs; i++) signer.viewer({ stream: 'bench', node: 'relay-1' });
  return Math.round((signs / (performance.now() - t0)) * 1000);
}

/**
 * Concurrency: the same decisions with 1, 16 and 128 in flight, on a fresh Redis each time,
 * without ioredis auto-pipelining (the store's default) and with it, alternating; the in-process store beside them.
 */
async function measureConcurrency(plan: Plan, log: (line: string) => void): Promise<Concurrency> {
  const { relays, loadDecisions } = plan;
  const concurrency: Concurrency = [];
  for (const inFlight of IN_FLIGHT) {
    const one = async (autoPipelining: boolean) => {
      const r = await startRedis();
      try {
        const store = await RedisTopologyStore.connect({ url: r.url, autoPipelining }, { logger: silentLogger });
        try {
          return await runPlacementLoad(store, { inFlight, decisions: loadDecisions, relays, prefix: 'load' });
        } finally {
          await store.close();
        }
      } finally {
        await r.stop();
      }
    };
    // Alternate which goes first, so that a drift in the machine's load favours neither.
    const first = IN_FLIGHT.indexOf(inFlight) % 2 === 0;
    const a = await one(first);
    const b = await one(!first);
    const [pipelined, plain] = first ? [a, b] : [b, a];
    const memory = await runPlacementLoad(new MemoryTopologyStore(), { inFlight, decisions: loadDecisions, relays, prefix: 'load' });
    log(`placement: ${inFlight} in flight: redis ${pipelined.decisionsPerSec}/s pipelined, ${plain.decisionsPerSec}/s not, memory ${memory.decisionsPerSec}/s`);
    concurrency.push({ inFlight, pipelined, plain, memory });
  }
  return concurrency;
}

/**
 * A join storm through the real path: sink viewers joining an origin whose controller keeps
 * its store in Redis, placed on the origin and on relays; the same storm on the in-process store is the baseline.
 */
async function runStorms(plan: Plan, log: (line: string) => void): Promise<Storms> {
  const { stormViewers } = plan;
  const storm = (redisStore: boolean) =>
    runTree({
      viewers: stormViewers,
      joinRatePerSec: stormViewers / STORM_SECONDS,
      relays: 3,
      relayMaxViewers: Math.ceil((stormViewers * 0.8) / 3) + 10,
      originMaxViewers: Math.round(stormViewers * 0.2),
      maxChildren: 3,
      redis: redisStore,
      kbps: 500,
      windowMs: 3000,
      sinkProcesses: 1,
      log,
    });
  const storms: Storms = { redis: undefined, memory: undefined, warnings: [] };
  try {
    storms.redis = await storm(true);
    storms.memory = await storm(false);
  } catch (err) {
    storms.warnings.push(`join storm failed: ${(err as Error).message}`);
  }
  return storms;
}

/** The headline (one decision at a time, Redis against in process), then the concurrency and the storm figures. */
function placementResult(plan: Plan, sims: Sims, signsPerSec: number, concurrency: Concurrency, storms: Storms, started: number): BenchResult {
  const { relays, joins, bigJoins } = plan;
  const { mem, big, red } = sims;
  const violations = [...mem.violations, ...big.violations, ...red.violations];
  return {
    id: 'placement',
    title: 'Controller placements per second',
    figures: [
      {
        name: 'store decisions per second (a placement or a release), Redis store (one Lua round trip each, one at a time)',
        value: red.operationsPerSec,
        unit: 'decisions/s',
        baseline: { name: 'in-process store, same workload', value: mem.operationsPerSec, unit: 'decisions/s' },
        ratio: red.operationsPerSec / mem.operationsPerSec,
        note: `One decision at a time. ${relays} relays of mixed capacity, K = 3, ${joins} joins with leaves on each store (placements alone: Redis ${red.placementsPerSec}/s, in process ${mem.placementsPerSec}/s). Higher is better. Each placement through the controller also signs an ES256 ticket: ${signsPerSec} signatures/s on one core, so in process the signature, not the decision, bounds the controller. ${bigJoins} joins in process: max depth ${big.maxDepth} (bound ${big.depthBound}, shallowest possible ${big.minimalDepth}); origin child relays ${big.originChildren} (K = 3); violations ${violations.length}.`,
      },
      ...concurrencyFigures(plan, concurrency),
      ...stormFigures(plan, storms),
    ],
    details: {
      concurrency,
      joinStorm: { redis: storms.redis ?? null, memory: storms.memory ?? null },
      memory: { ...mem, violations: mem.violations.length },
      memoryBig: { ...big, violations: big.violations.length },
      redis: { ...red, violations: red.violations.length },
      ticketSignaturesPerSec: signsPerSec,
    },
    warnings: [...violations.slice(0, 5).map((v) => `violation: ${v}`), ...storms.warnings, ...stormShortfalls(plan, storms)],
    durationMs: Date.now() - started,
  };
}

/** Per concurrency level: the Redis store as it runs (no auto-pipelining) against auto-pipelining. */
function concurrencyFigures(plan: Plan, concurrency: Concurrency): BenchFigure[] {
  const { relays, loadDecisions } = plan;
  const one1 = concurrency[0]!.plain.decisionsPerSec;
  return concurrency.map(({ inFlight, pipelined, plain, memory }) => ({
    name: `store decisions per second with ${inFlight} in flight, Redis store (concurrent Lua calls pipelined on one connection)`,
    value: plain.decisionsPerSec,
    unit: 'decisions/s',
    baseline: { name: 'the same with ioredis auto-pipelining', value: pipelined.decisionsPerSec, unit: 'decisions/s' },
    ratio: plain.decisionsPerSec / pipelined.decisionsPerSec,
    note:
      `Higher is better; ratio > 1: auto-pipelining (off by default) does not pay. ${loadDecisions} decisions (placements, a release one time in three) by ${inFlight} concurrent callers on ${relays} relays, ` +
      `${(plain.decisionsPerSec / one1).toFixed(1)}× the rate with one in flight; latency p50/p99 ${plain.latencyP50Ms.toFixed(2)}/${plain.latencyP99Ms.toFixed(2)} ms ` +
      `(auto-pipelined: ${pipelined.latencyP50Ms.toFixed(2)}/${pipelined.latencyP99Ms.toFixed(2)} ms); in-process store ${memory.decisionsPerSec}/s. Errors: ${pipelined.errors + plain.errors}.`,
  }));
}

/** When both storms ran: the viewers of either that did not join, or joined and received nothing. */
function stormShortfalls(plan: Plan, storms: Storms): string[] {
  const { stormViewers } = plan;
  const { redis: stormRedis, memory: stormMemory } = storms;
  if (!stormRedis || !stormMemory) return [];
  const warnings: string[] = [];
  for (const [name, s] of [['Redis', stormRedis], ['in-process', stormMemory]] as const) {
    if (s.failed > 0 || s.joined < stormViewers) warnings.push(`join storm (${name} store): ${s.joined} of ${stormViewers} joined, failures ${JSON.stringify(s.failuresByCode)}`);
    if (s.receiving < s.connected) warnings.push(`join storm (${name} store): ${s.connected - s.receiving} viewers received nothing in the window`);
  }
  return warnings;
}

/** The storm's figure when both storms ran: viewers that joined and received, Redis against in process. */
function stormFigures(plan: Plan, storms: Storms): BenchFigure[] {
  const { stormViewers } = plan;
  const { redis: stormRedis, memory: stormMemory } = storms;
  if (!stormRedis || !stormMemory) return [];
  const where = (s: TreeRunResult) => Object.entries(s.viewersByNode).map(([n, c]) => `${n} ${c}`).join(', ');
  return [
    {
      name: `join storm: ${stormViewers} sink viewers joining in ${STORM_SECONDS} s through the origin, Redis store: viewers that joined and received`,
      value: Math.min(stormRedis.joined, stormRedis.receiving),
      unit: 'viewers',
      baseline: { name: 'the same storm, in-process store', value: Math.min(stormMemory.joined, stormMemory.receiving), unit: 'viewers' },
      ratio: Math.min(stormRedis.joined, stormRedis.receiving) / Math.max(1, Math.min(stormMemory.joined, stormMemory.receiving)),
      note:
        `Higher is better (all ${stormViewers} is the goal). Origin (budget ${Math.round(stormViewers * 0.2)} viewers) and 3 relays on this machine, real WebRTC joins (the Go sink), ${stormViewers / STORM_SECONDS} joins/s asked. ` +
        `Redis: ${stormRedis.joined} joined, ${stormRedis.failed} failed, last join settled after ${(stormRedis.stormMs / 1000).toFixed(1)} s, join (request → DTLS connected) p50 ${fmt(stormRedis.joinMs.p50)} / p95 ${fmt(stormRedis.joinMs.p95)} / max ${fmt(stormRedis.joinMs.max)} ms over ${stormRedis.joinMs.count} joins, loss ${(stormRedis.loss * 100).toFixed(2)} %; placed ${where(stormRedis)}. ` +
        `In process: ${stormMemory.joined} joined, p50 ${fmt(stormMemory.joinMs.p50)} / p95 ${fmt(stormMemory.joinMs.p95)} ms.`,
    },
  ];
}

function fmt(v: number | null): string {
  return v === null ? 'n/a' : v.toFixed(0);
}
