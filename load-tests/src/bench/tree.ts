import { linearFit } from './capacity/ramp.js';
import { runTree, type NodeFigures, type TreeRunOptions, type TreeRunResult } from './treeRun.js';
import type { BenchContext, BenchFigure, BenchResult } from './types.js';

/** Where relay capacity is read: the share of a core a relay process may use. */
const CPU_LIMIT = 0.85;
/** K: child relays per node and stream. */
const K = 3;

/** The run's size. */
interface Plan {
  full: boolean;
  viewers: number;
  relays: number;
  originMaxViewers: number;
  relayMaxViewers: number;
}

/** The per-node figures of a run: the origin against the relays that carried viewers. */
interface NodeCosts {
  origin: NodeFigures;
  relayNodes: NodeFigures[];
  /** Mean over the relays: CPU per viewer (% of a core) and worker memory per viewer (KiB). */
  relayCpv: number;
  relayMem: number;
  fit: ReturnType<typeof linearFit>;
  relayCapacity: number;
  originCapacity: number;
  /** Stream copies the origin sends (its egress over one viewer's bitrate). */
  copies: number;
}

/**
 * A thousand viewers through a tree on this machine: an origin with a small budget, relays in
 * processes of their own (two levels), sink viewers joining through the origin's URL. Every
 * viewer must receive; figures per node: CPU and worker memory per viewer, and each relay's
 * capacity (viewers per relay process where its CPU line reaches 85 % of a core).
 */
export async function runTreeBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const plan = planFor(ctx.scale);
  // Viewers as browsers are today (transport-cc negotiated), then viewers without it: what
  // leaving it out of the viewers' capabilities would give (mediasoup then runs no per-viewer
  // bandwidth estimation, which single-layer consumers do not use). Per-node figures: the latter.
  const today = await runTree(treeOptions(plan, true, ctx.log));
  const r = await runTree(treeOptions(plan, false, ctx.log));
  const costs = nodeCosts(r);
  return {
    id: 'tree',
    title: `${plan.viewers} viewers through a tree on one machine (origin + ${plan.relays} relays, sink viewers)`,
    figures: [...receivingFigures(plan, today, r, costs), ...costFigures(costs, r)],
    details: { withTwcc: today, withoutTwcc: r, cpuLimit: CPU_LIMIT, relayFit: costs.fit, originCopies: costs.copies },
    warnings: treeWarnings(plan, today, r, costs),
    durationMs: Date.now() - started,
  };
}

/** The run's size by scale: the origin takes a small share of the viewers, the relays the rest with a margin. */
function planFor(scale: BenchContext['scale']): Plan {
  const full = scale === 'full';
  const viewers = full ? 1000 : 200;
  const relays = 5;
  const originMaxViewers = full ? 100 : 20;
  const relayMaxViewers = Math.ceil((viewers - originMaxViewers) / relays) + (full ? 20 : 5);
  return { full, viewers, relays, originMaxViewers, relayMaxViewers };
}

/** One tree run, with or without transport-cc at the viewers. */
function treeOptions(plan: Plan, sinkTwcc: boolean, log: (line: string) => void): TreeRunOptions {
  const { full, viewers, relays, relayMaxViewers, originMaxViewers } = plan;
  return {
    viewers,
    joinRatePerSec: full ? 50 : 40,
    relays,
    relayMaxViewers,
    originMaxViewers,
    maxChildren: K,
    redis: false,
    kbps: 500,
    windowMs: full ? 8000 : 4000,
    sinkProcesses: full ? 2 : 1,
    sinkTwcc,
    log,
  };
}

/** Per viewer on the origin and on the relays (CPU, memory), each relay's capacity, the origin's copies of the stream. */
function nodeCosts(r: TreeRunResult): NodeCosts {
  const origin = r.nodes.find((n) => n.kind === 'origin')!;
  const relayNodes = r.nodes.filter((n) => n.kind === 'relay' && n.viewers > 0);
  const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);
  // A relay's CPU is a fixed part (its pipe in, its Node process) plus a part per viewer: fit
  // a line over the relays (they carry different numbers of viewers) and read where it reaches the limit.
  const fit = linearFit(relayNodes.map((n) => ({ viewers: n.viewers, cpu: n.cpu })));
  return {
    origin,
    relayNodes,
    relayCpv: mean(relayNodes.map(perViewer)),
    relayMem: mean(relayNodes.map(memPerViewer)),
    fit,
    relayCapacity: fit && fit.slope > 0 ? Math.round((CPU_LIMIT - fit.intercept) / fit.slope) : NaN,
    originCapacity: origin.viewers > 0 ? Math.round((CPU_LIMIT / origin.cpu) * origin.viewers) : NaN,
    // The origin sends one copy per own viewer and per child relay, no more.
    copies: r.kbpsPerViewer > 0 ? origin.bitrateOutKbps / r.kbpsPerViewer : NaN,
  };
}

/** A node's CPU per viewer, % of one core. */
function perViewer(n: NodeFigures): number {
  return n.viewers > 0 ? (n.cpu / n.viewers) * 100 : NaN;
}

/** A node's worker memory growth per viewer, KiB. */
function memPerViewer(n: NodeFigures): number {
  return n.viewers > 0 ? (n.workerRss - n.workerRssIdle) / n.viewers / 1024 : NaN;
}

/** How a run's viewers fared, in one line. */
function lossNote(plan: Plan, x: TreeRunResult): string {
  return `${x.receiving} of ${plan.viewers} receiving, ${x.joined} joined, ${x.failed} failed, loss ${(x.loss * 100).toFixed(2)} %, join p95 ${num(x.joinMs.p95)} ms`;
}

/** What makes the figures weaker: a tree that did not hold, an origin sending more copies than it should. */
function treeWarnings(plan: Plan, today: TreeRunResult, r: TreeRunResult, c: NodeCosts): string[] {
  const { viewers } = plan;
  const { origin, copies } = c;
  const warnings: string[] = [];
  if (today.receiving < viewers || today.loss > 0.01) {
    warnings.push(`with transport-cc negotiated (as browsers do today) the tree did not hold: ${lossNote(plan, today)}; the machine's two cores were the limit`);
  }
  const allowed = origin.viewers + Math.min(K, origin.children);
  if (copies > allowed * 1.15) warnings.push(`the origin sends ${copies.toFixed(1)} stream copies, more than its ${origin.viewers} viewers + ${origin.children} child relays`);
  if (r.failed > 0) warnings.push(`without transport-cc: ${r.failed} of ${viewers} joins failed: ${JSON.stringify(r.failuresByCode)}`);
  if (r.receiving < viewers) warnings.push(`without transport-cc: ${viewers - r.receiving} of ${viewers} viewers did not receive in the window`);
  if (r.loss > 0.01) warnings.push(`without transport-cc: loss ${(r.loss * 100).toFixed(2)} % ≥ 1 %`);
  return warnings;
}

/** Whether every viewer received, with transport-cc and without it. */
function receivingFigures(plan: Plan, today: TreeRunResult, r: TreeRunResult, c: NodeCosts): BenchFigure[] {
  const { full, viewers } = plan;
  const { origin, copies } = c;
  const layout = r.nodes.map((n) => `${n.id} (${n.kind}, depth ${n.depth ?? '?'}, parent ${n.parent ?? '–'}): ${n.viewers} viewers, ${n.children} child relays, ${(n.cpu * 100).toFixed(1)} % CPU, worker RSS ${(n.workerRss / 2 ** 20).toFixed(0)} MiB, Node RSS ${(n.nodeRss / 2 ** 20).toFixed(0)} MiB, out ${(n.bitrateOutKbps / 1000).toFixed(1)} Mbit/s`);
  return [
    {
      name: `viewers receiving in the steady window, sink viewers negotiating transport-cc as browsers do (joined through the origin's URL at ${full ? 50 : 40}/s)`,
      value: today.receiving,
      unit: 'viewers',
      baseline: { name: 'viewers asked for', value: viewers, unit: 'viewers' },
      ratio: today.receiving / viewers,
      note: `Higher is better; 1.00 = every viewer received. ${lossNote(plan, today)}; the sinks used ${(today.sinkCpu * 100).toFixed(0)} % of a core.`,
    },
    {
      name: `viewers receiving in the steady window, sink viewers without transport-cc (joined through the origin's URL at ${full ? 50 : 40}/s)`,
      value: r.receiving,
      unit: 'viewers',
      baseline: { name: 'viewers asked for', value: viewers, unit: 'viewers' },
      ratio: r.receiving / viewers,
      note:
        `Higher is better; 1.00 = every viewer received. ${r.joined} joined, ${r.failed} failed; last join settled after ${(r.stormMs / 1000).toFixed(1)} s; join (request → DTLS connected) p50 ${num(r.joinMs.p50)} / p95 ${num(r.joinMs.p95)} ms over ${r.joinMs.count} joins. ` +
        `Loss ${(r.loss * 100).toFixed(3)} % over the window (after NACK; sink socket drops ${r.sinkDrops} taken out), ${r.kbpsPerViewer.toFixed(0)} kbit/s and ${r.ppsPerViewer.toFixed(0)} packets/s per viewer; the sinks used ${(r.sinkCpu * 100).toFixed(0)} % of a core. ` +
        `Origin egress ${(origin.bitrateOutKbps / 1000).toFixed(1)} Mbit/s = ${copies.toFixed(1)} stream copies for ${origin.viewers} own viewers + ${origin.children} child relays (K = ${K}). Nodes: ${layout.join('; ')}.`,
    },
  ];
}

/** What a viewer costs on a relay against the origin: CPU, capacity at the limit, worker memory. */
function costFigures(c: NodeCosts, r: TreeRunResult): BenchFigure[] {
  const { origin, relayNodes, relayCpv, relayMem, fit, relayCapacity, originCapacity } = c;
  return [
    {
      name: 'CPU per viewer on a relay process (Node + its worker), mean over relays',
      value: round(relayCpv, 4),
      unit: '% of one core per viewer',
      baseline: { name: 'the origin (Node + worker, controller included)', value: round(perViewer(origin), 4), unit: '% of one core per viewer' },
      ratio: relayCpv / perViewer(origin),
      note: `Lower is better. Each node's processes over the window divided by its viewers, all costs included (its pipe in, signalling, pings). Relays: ${relayNodes.map((n) => `${n.viewers} viewers ${perViewer(n).toFixed(3)} %`).join(', ')}.`,
    },
    {
      name: 'relay capacity: viewers per relay process where its CPU reaches 85 % of a core',
      value: relayCapacity,
      unit: 'viewers',
      baseline: { name: 'the origin, extrapolated the same way from its viewers', value: originCapacity, unit: 'viewers' },
      ratio: relayCapacity / originCapacity,
      note: `Higher is better. Line fitted through the relays' (viewers, CPU) points${fit ? ` (${(fit.slope * 100).toFixed(4)} % per viewer + ${(fit.intercept * 100).toFixed(1)} % fixed, r² ${fit.r2.toFixed(3)})` : ''}; an extrapolation from the loads they carried, not a ramp to saturation. The origin's is its CPU per viewer scaled to the limit.`,
    },
    {
      name: 'worker memory per viewer (RSS growth from no viewer), mean over relays',
      value: round(relayMem, 1),
      unit: 'KiB per viewer',
      baseline: { name: 'the origin', value: round(memPerViewer(origin), 1), unit: 'KiB per viewer' },
      ratio: relayMem / memPerViewer(origin),
      note: `Lower is better. mediasoup worker RSS with viewers minus before any viewer, over its viewers. Node process RSS per node: ${r.nodes.map((n) => `${(n.nodeRss / 2 ** 20).toFixed(0)} MiB`).join(', ')}.`,
    },
  ];
}

function round(v: number, digits: number): number {
  return Number.isFinite(v) ? Number(v.toFixed(digits)) : v;
}

function num(v: number | null): string {
  return v === null ? 'n/a' : v.toFixed(0);
}
