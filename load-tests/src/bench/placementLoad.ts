import { mixedPopulation, seededRandom, type NodeRecord, type StreamRecord, type TopologyStore } from '@cascade/controller';

export interface PlacementLoadOptions {
  /** Decisions in flight at once (concurrent callers, as a controller serving many joins has). */
  inFlight: number;
  /** Decisions to make in all (placements and releases). */
  decisions: number;
  relays: number;
  /** K. Default 3. */
  maxChildren?: number;
  /** Keys and node ids start with this, so runs on one store do not collide. */
  prefix: string;
  seed?: number;
}

export interface PlacementLoadResult {
  inFlight: number;
  decisions: number;
  placements: number;
  releases: number;
  /** Placements the store refused (no room): part of the workload, not errors. */
  refused: number;
  errors: number;
  decisionsPerSec: number;
  /** Per decision, from call to answer (ms). */
  latencyP50Ms: number;
  latencyP99Ms: number;
}

/**
 * Store decisions with `inFlight` callers at once: each places a viewer on the stream, and
 * releases one of the viewers placed so far one time in three, until `decisions` are done.
 * The population is the placement simulation's (mixed relays, the origin with a small budget),
 * set up first and not timed. What it measures is the store's throughput under concurrency:
 * one Lua round trip per decision on Redis, pipelined on one connection.
 */
export async function runPlacementLoad(store: TopologyStore, o: PlacementLoadOptions): Promise<PlacementLoadResult> {
  const K = o.maxChildren ?? 3;
  const random = seededRandom(o.seed ?? 7);
  const now = 1_700_000_000_000;
  const ttlMs = 365 * 24 * 3600 * 1000;
  const record = (id: string, kind: NodeRecord['kind'], volunteer: boolean, maxViewers: number, maxChildren: number): NodeRecord => ({
    id,
    kind,
    volunteer,
    owner: 'bench',
    url: `http://${id}.bench:7000`,
    mediaIp: '10.0.0.1',
    capacity: { maxViewers, maxChildren, upKbps: 0, downKbps: 0 },
    registeredAt: now,
  });
  const originId = `${o.prefix}-origin`;
  await store.upsertNode(record(originId, 'origin', false, 50, K), 'ready', ttlMs, now);
  for (let i = 0; i < o.relays; i++) {
    const spec = mixedPopulation(i, random, K);
    await store.upsertNode(record(`${o.prefix}-r${i}`, 'relay', spec.volunteer, spec.maxViewers, spec.maxChildren), 'ready', ttlMs, now);
  }
  const stream: StreamRecord = { id: `${o.prefix}-stream`, title: 'bench', state: 'live', createdAt: now, updatedAt: now, originNodeId: originId, owner: 'bench' };
  await store.putStream(stream);

  const placed: string[] = [];
  const latencies: number[] = [];
  let started = 0;
  let placements = 0;
  let releases = 0;
  let refused = 0;
  let errors = 0;
  const caller = async () => {
    while (started < o.decisions) {
      started++;
      const release = placed.length > 0 && random() < 1 / 3;
      const t0 = performance.now();
      try {
        if (release) {
          const [nodeId] = placed.splice(Math.floor(random() * placed.length), 1);
          await store.releaseViewer(stream.id, nodeId!);
          releases++;
        } else {
          const r = await store.placeViewer(stream.id, { maxChildren: K, now }, []);
          placed.push(r.nodeId);
          placements++;
        }
      } catch (err) {
        if ((err as { code?: string }).code === 'CASCADE_ERR_NODE_CAPACITY') refused++;
        else errors++;
      }
      latencies.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, o.inFlight) }, caller));
  const ms = performance.now() - t0;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return {
    inFlight: o.inFlight,
    decisions: latencies.length,
    placements,
    releases,
    refused,
    errors,
    decisionsPerSec: Math.round((latencies.length / ms) * 1000),
    latencyP50Ms: q(0.5),
    latencyP99Ms: q(0.99),
  };
}
