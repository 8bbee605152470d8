import { CascadeError } from '@cascade/protocol';
import type { TopologyStore } from '../store/TopologyStore.js';
import type { NodeRecord, NodeView, StreamRecord, TreeEntry } from '../types.js';

/** One relay of the simulated population. */
export interface SimRelaySpec {
  volunteer: boolean;
  maxViewers: number;
  maxChildren: number;
}

export interface PlacementSimOptions {
  /** Relays registered (besides the origin). Default 1000. */
  relays?: number;
  /** K, children per node per stream. Default 3 (the config default). */
  maxChildren?: number;
  /** Viewer joins attempted. Default 100000. */
  joins?: number;
  /** Chance, after each join, that a random watching viewer leaves (0..1). Default 0.2. */
  leaveProbability?: number;
  /** PRNG seed; the same seed gives the same population and the same operations. Default 1. */
  seed?: number;
  /** Viewers the origin serves itself. Default 50. */
  originMaxViewers?: number;
  /** Child relays the origin may feed (all streams). Default K. */
  originMaxChildren?: number;
  /** The relay population; default `mixedPopulation` (one dedicated in five). */
  population?: (index: number, random: () => number, maxChildren: number) => SimRelaySpec;
  /** Check the tree's invariants every this many operations too (slow on Redis). Default 0: only at the end. */
  checkEvery?: number;
  /** Id prefix of the simulated nodes and stream, so several runs can share a store. Default 'sim'. */
  prefix?: string;
}

export interface PlacementSimResult {
  /** Successful placeViewer() calls. */
  placements: number;
  /** placeViewer() calls rejected with CASCADE_ERR_NODE_CAPACITY. */
  rejected: number;
  leaves: number;
  /** Viewers still watching at the end. */
  watching: number;
  /** Wall time of the joins and leaves (setup and checks excluded), ms. */
  elapsedMs: number;
  /** placeViewer() plus releaseViewer() calls per second of elapsedMs. */
  operationsPerSec: number;
  /** placeViewer() calls per second of elapsedMs. */
  placementsPerSec: number;
  /** Deepest relay in the tree (the origin is depth 0). */
  maxDepth: number;
  /** ceil(log_K(relays)) + 1: the depth the policy must stay within. */
  depthBound: number;
  /** Shallowest depth any tree of the relays actually attached could have (fan-outs sorted, breadth first). */
  minimalDepth: number;
  /** Relays in the tree at the end. */
  relaysInTree: number;
  /** Child relays the origin feeds in the stream. */
  originChildren: number;
  /** Copies of the stream the origin sends at the end: its child relays plus the viewers it serves itself. */
  originEgress: number;
  /** Largest per-stream child count of any node. */
  maxChildrenPerNode: number;
  /** Broken invariants found (empty when the store behaved). */
  violations: string[];
}

/**
 * The default population: one relay in five dedicated (2K..4K child slots, 150..350 viewers),
 * the rest volunteers (0..2 child slots, 20..60 viewers).
 */
export function mixedPopulation(index: number, random: () => number, maxChildren: number): SimRelaySpec {
  if (index % 5 === 0) {
    return { volunteer: false, maxChildren: maxChildren * (2 + Math.floor(random() * 3)), maxViewers: 150 + Math.floor(random() * 201) };
  }
  return { volunteer: true, maxChildren: Math.floor(random() * 3), maxViewers: 20 + Math.floor(random() * 41) };
}

/** mulberry32: small, fast, good enough for a simulation, and identical on every platform. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Smallest d with K^d >= relays, plus one: ceil(log_K(relays)) + 1 without floating point error. */
export function depthBound(relays: number, maxChildren: number): number {
  if (maxChildren <= 1) return relays + 1;
  let d = 0;
  for (let reach = 1; reach < relays; reach *= maxChildren) d++;
  return d + 1;
}

/**
 * Shallowest possible tree for these fan-outs under a root of fan-out `rootFanout`: fill level
 * by level, the nodes with most child slots first (putting a larger fan-out higher never makes
 * a tree deeper). Returns the depth of the deepest node, or Infinity if they cannot all fit.
 */
export function minimalDepth(rootFanout: number, fanouts: number[]): number {
  const sorted = [...fanouts].sort((a, b) => b - a);
  let slots = rootFanout;
  let depth = 0;
  let i = 0;
  while (i < sorted.length) {
    if (slots === 0) return Infinity;
    depth++;
    let next = 0;
    const end = Math.min(sorted.length, i + slots);
    for (; i < end; i++) next += sorted[i]!;
    slots = next;
  }
  return depth;
}

/**
 * Run viewer joins and leaves for one stream through `store.placeViewer()` and
 * `store.releaseViewer()`, then check the resulting tree. Deterministic for a given seed
 * (placements and figures; timings vary). The store should not already hold nodes or streams
 * with the same prefix.
 */
export async function runPlacementSim(store: TopologyStore, options: PlacementSimOptions = {}): Promise<PlacementSimResult> {
  const K = options.maxChildren ?? 3;
  const relayCount = options.relays ?? 1000;
  const joins = options.joins ?? 100_000;
  const leaveProbability = options.leaveProbability ?? 0.2;
  const prefix = options.prefix ?? 'sim';
  const checkEvery = options.checkEvery ?? 0;
  const random = seededRandom(options.seed ?? 1);
  const population = options.population ?? mixedPopulation;
  const now = 1_700_000_000_000;
  const ttlMs = 365 * 24 * 3600 * 1000;
  const policy = { maxChildren: K, now };

  // ---- the population
  const originId = `${prefix}-origin`;
  const specs = new Map<string, SimRelaySpec>();
  const nodes: NodeRecord[] = [];
  const record = (id: string, kind: NodeRecord['kind'], volunteer: boolean, maxViewers: number, maxChildren: number): NodeRecord => ({
    id,
    kind,
    volunteer,
    owner: 'sim',
    url: `http://${id}.sim:7000`,
    mediaIp: '10.0.0.1',
    capacity: { maxViewers, maxChildren, upKbps: 0, downKbps: 0 },
    registeredAt: now,
  });
  const originSpec: SimRelaySpec = { volunteer: false, maxViewers: options.originMaxViewers ?? 50, maxChildren: options.originMaxChildren ?? K };
  specs.set(originId, originSpec);
  nodes.push(record(originId, 'origin', false, originSpec.maxViewers, originSpec.maxChildren));
  for (let i = 0; i < relayCount; i++) {
    const id = `${prefix}-r${String(i).padStart(5, '0')}`;
    const spec = population(i, random, K);
    specs.set(id, spec);
    nodes.push(record(id, 'relay', spec.volunteer, spec.maxViewers, spec.maxChildren));
  }
  for (const n of nodes) await store.upsertNode(n, 'ready', ttlMs, now);
  const stream: StreamRecord = {
    id: `${prefix}-stream`,
    title: 'simulation',
    state: 'live',
    createdAt: now,
    updatedAt: now,
    originNodeId: originId,
    owner: 'sim',
  };
  await store.putStream(stream);

  // ---- joins and leaves, tracked on the side to check the store against
  const watching: string[] = []; // nodeId per watching viewer
  const load = new Map<string, number>();
  const inTree = new Set<string>([originId]);
  const children = new Map<string, number>();
  const violations: string[] = [];
  const violation = (what: string) => {
    if (violations.length < 50) violations.push(what);
  };
  let placements = 0;
  let rejected = 0;
  let leaves = 0;
  let ops = 0;

  let checking = 0; // ms spent checking, left out of elapsedMs
  const started = performance.now();
  for (let j = 0; j < joins; j++) {
    try {
      const r = await store.placeViewer(stream.id, policy, []);
      placements++;
      if (r.attached) {
        if (inTree.has(r.attached.nodeId)) violation(`${r.attached.nodeId} attached twice`);
        inTree.add(r.attached.nodeId);
        children.set(r.attached.parentId, (children.get(r.attached.parentId) ?? 0) + 1);
      }
      if (!inTree.has(r.nodeId)) violation(`viewer placed on ${r.nodeId}, which is not in the tree`);
      const v = (load.get(r.nodeId) ?? 0) + 1;
      load.set(r.nodeId, v);
      if (v > specs.get(r.nodeId)!.maxViewers) violation(`${r.nodeId} holds ${v} viewers, capacity ${specs.get(r.nodeId)!.maxViewers}`);
      watching.push(r.nodeId);
    } catch (err) {
      if (!(err instanceof CascadeError) || err.code !== 'CASCADE_ERR_NODE_CAPACITY') throw err;
      rejected++;
      const t = performance.now();
      const roomy = [...inTree].find((id) => (load.get(id) ?? 0) < specs.get(id)!.maxViewers);
      if (roomy) violation(`rejected a viewer while ${roomy} (in the tree) had room`);
      const spare = [...specs].find(([id, s]) => !inTree.has(id) && s.maxViewers > 0);
      const slot = [...inTree].find((id) => (children.get(id) ?? 0) < Math.min(K, specs.get(id)!.maxChildren));
      if (spare && slot) violation(`rejected a viewer while ${spare[0]} could have been attached under ${slot}`);
      checking += performance.now() - t;
    }
    ops++;
    if (watching.length > 0 && random() < leaveProbability) {
      const i = Math.floor(random() * watching.length);
      const nodeId = watching[i]!;
      watching[i] = watching[watching.length - 1]!;
      watching.pop();
      await store.releaseViewer(stream.id, nodeId);
      load.set(nodeId, load.get(nodeId)! - 1);
      leaves++;
      ops++;
    }
    if (checkEvery > 0 && (j + 1) % checkEvery === 0) {
      const t = performance.now();
      await checkTree(store, stream, specs, load, K, now, violation);
      checking += performance.now() - t;
    }
  }
  const elapsedMs = performance.now() - started - checking;

  // ---- the resulting tree
  const tree = await checkTree(store, stream, specs, load, K, now, violation);
  const relays = tree.filter((e) => e.nodeId !== originId);
  const root = tree.find((e) => e.nodeId === originId);
  const fanout = (id: string) => Math.min(K, specs.get(id)!.maxChildren);
  return {
    placements,
    rejected,
    leaves,
    watching: watching.length,
    elapsedMs: Math.round(elapsedMs),
    operationsPerSec: Math.round((ops / elapsedMs) * 1000),
    placementsPerSec: Math.round((placements / elapsedMs) * 1000),
    maxDepth: tree.reduce((m, e) => Math.max(m, e.depth), 0),
    depthBound: depthBound(relayCount, K),
    minimalDepth: minimalDepth(fanout(originId), relays.map((e) => fanout(e.nodeId))),
    relaysInTree: relays.length,
    originChildren: root?.children ?? 0,
    originEgress: (root?.children ?? 0) + (root?.viewers ?? 0),
    maxChildrenPerNode: tree.reduce((m, e) => Math.max(m, e.children), 0),
    violations,
  };
}

/**
 * What is wrong with a stream's tree, whatever produced it: a root other than the origin, a
 * parent outside the tree, a depth that does not follow from the parent's, a cycle, a child
 * count that does not match the tree, more than K children, or a node beyond its capacity
 * (viewers or children, all streams together). Empty when all is well.
 */
export function treeViolations(tree: TreeEntry[], nodes: NodeView[], originNodeId: string, K: number): string[] {
  const out: string[] = [];
  const byId = new Map(tree.map((e) => [e.nodeId, e]));
  const childCount = new Map<string, number>();
  for (const e of tree) {
    if (e.nodeId === originNodeId) {
      if (e.parent !== null || e.depth !== 0) out.push(`origin has parent ${e.parent} at depth ${e.depth}`);
      continue;
    }
    const p = e.parent === null ? undefined : byId.get(e.parent);
    if (!p) {
      out.push(`${e.nodeId} has parent ${e.parent}, not in the tree`);
      continue;
    }
    childCount.set(p.nodeId, (childCount.get(p.nodeId) ?? 0) + 1);
    if (e.depth !== p.depth + 1) out.push(`${e.nodeId} at depth ${e.depth} under ${p.nodeId} at depth ${p.depth}`);
    // Walking up must reach the origin within the tree's size (no cycle).
    let cur: TreeEntry | undefined = e;
    for (let i = 0; cur && cur.parent !== null && i <= tree.length; i++) cur = byId.get(cur.parent);
    if (!cur || cur.nodeId !== originNodeId) out.push(`${e.nodeId} does not lead up to the origin`);
  }
  if (!byId.has(originNodeId)) out.push('the origin is not in the tree');
  for (const e of tree) {
    const n = childCount.get(e.nodeId) ?? 0;
    if (e.children !== n) out.push(`${e.nodeId} counts ${e.children} children, the tree has ${n}`);
    if (e.children > K) out.push(`${e.nodeId} feeds ${e.children} children, K is ${K}`);
  }
  for (const n of nodes) {
    if (n.load.viewers > n.capacity.maxViewers) out.push(`node ${n.id} holds ${n.load.viewers} viewers, capacity ${n.capacity.maxViewers}`);
    if (n.load.children > n.capacity.maxChildren) out.push(`node ${n.id} feeds ${n.load.children} children, capacity ${n.capacity.maxChildren}`);
  }
  return out;
}

/** Check the stored tree and node loads against what the simulation placed; returns the tree. */
async function checkTree(
  store: TopologyStore,
  stream: StreamRecord,
  specs: Map<string, SimRelaySpec>,
  load: Map<string, number>,
  K: number,
  now: number,
  violation: (what: string) => void,
): Promise<TreeEntry[]> {
  const tree = await store.getTree(stream.id);
  const nodes = (await store.listNodes(now)).filter((n) => specs.has(n.id));
  for (const v of treeViolations(tree, nodes, stream.originNodeId, K)) violation(v);
  let viewers = 0;
  for (const e of tree) {
    viewers += e.viewers;
    if (e.viewers !== (load.get(e.nodeId) ?? 0)) violation(`${e.nodeId} counts ${e.viewers} viewers, ${load.get(e.nodeId) ?? 0} placed`);
  }
  const placed = [...load.values()].reduce((a, b) => a + b, 0);
  if (viewers !== placed) violation(`tree counts ${viewers} viewers, ${placed} watching`);
  for (const n of nodes) {
    if (n.load.viewers !== (load.get(n.id) ?? 0)) violation(`node ${n.id} counts ${n.load.viewers} viewers, ${load.get(n.id) ?? 0} placed`);
  }
  return tree;
}
