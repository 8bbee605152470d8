import { linearFit } from './capacity/ramp.js';
import { runTree, type NodeFigures } from './treeRun.js';
import type { BenchContext, BenchResult } from './types.js';

/** Where relay capacity is read: the share of a core a relay process may use. */
const CPU_LIMIT = 0.85;

/**
 * A thousand viewers through a tree on this machine: an origin with a small budget, relays in
 * processes of their own (two levels), sink viewers joining through the origin's URL. Every
 * viewer must receive; figures per node: CPU and worker memory per viewer, and each relay's
 * capacity (viewers per relay process where its CPU line reaches 85 % of a core).
 */
export async function runTreeBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const full = ctx.scale === 'full';
  const viewers = full ? 1000 : 200;
  const relays = 5;
  const originMaxViewers = full ? 100 : 20;
  const relayMaxViewers = Math.ceil((viewers - originMaxViewers) / relays) + (full ? 20 : 5);
  const K = 3;
  const tree = (sinkTwcc: boolean) =>
    runTree({
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
      log: ctx.log,
    });
  // Viewers as browsers are today (transport-cc negotiated), then viewers without it: what
  // leaving it out of the viewers' capabilities would give (mediasoup then runs no per-viewer
  // bandwidth estimation, which single-layer consumers do not use). Per-node figures: the latter.
  const today = await tree(true);
  const r = await tree(false);
  const warnings: string[] = [];
  const lossNote = (x: typeof r) => `${x.receiving} of ${viewers} receiving, ${x.joined} joined, ${x.failed} failed, loss ${(x.loss * 100).toFixed(2)} %, join p95 ${num(x.joinMs.p95)} ms`;
  if (today.receiving < viewers || today.loss > 0.01) {
    warnings.push(`with transport-cc negotiated (as browsers do today) the tree did not hold: ${lossNote(today)}; the machine's two cores were the limit`);
  }
  const origin = r.nodes.find((n) => n.kind === 'origin')!;
  const relayNodes = r.nodes.filter((n) => n.kind === 'relay' && n.viewers > 0);
  const perViewer = (n: NodeFigures) => (n.viewers > 0 ? (n.cpu / n.viewers) * 100 : NaN);
  const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);
  const relayCpv = mean(relayNodes.map(perViewer));
  const memPerViewer = (n: NodeFigures) => (n.viewers > 0 ? (n.workerRss - n.workerRssIdle) / n.viewers / 1024 : NaN);
  const relayMem = mean(relayNodes.map(memPerViewer));
  // A relay's CPU is a fixed part (its pipe in, its Node process) plus a part per viewer: fit
  // a line over the relays (they carry different numbers of viewers) and read where it reaches the limit.
  const fit = linearFit(relayNodes.map((n) => ({ viewers: n.viewers, cpu: n.cpu })));
  const relayCapacity = fit && fit.slope > 0 ? Math.round((CPU_LIMIT - fit.intercept) / fit.slope) : NaN;
  const originCapacity = origin.viewers > 0 ? Math.round((CPU_LIMIT / origin.cpu) * origin.viewers) : NaN;
  // The origin sends one copy per own viewer and per child relay, no more.
  const copies = r.kbpsPerViewer > 0 ? origin.bitrateOutKbps / r.kbpsPerViewer : NaN;
  const allowed = origin.viewers + Math.min(K, origin.children);
  if (copies > allowed * 1.15) warnings.push(`the origin sends ${copies.toFixed(1)} stream copies, more than its ${origin.viewers} viewers + ${origin.children} child relays`);
  if (r.failed > 0) warnings.push(`without transport-cc: ${r.failed} of ${viewers} joins failed: ${JSON.stringify(r.failuresByCode)}`);
  if (r.receiving < viewers) warnings.push(`without transport-cc: ${viewers - r.receiving} of ${viewers} viewers did not receive in the window`);
  if (r.loss > 0.01) warnings.push(`without transport-cc: loss ${(r.loss * 100).toFixed(2)} % ≥ 1 %`);
  const layout = r.nodes.map((n) => `${n.id} (${n.kind}, depth ${n.depth ?? '?'}, parent ${n.parent ?? '–'}): ${n.viewers} viewers, ${n.children} child relays, ${(n.cpu * 100).toFixed(1)} % CPU, worker RSS ${(n.workerRss / 2 ** 20).toFixed(0)} MiB, Node RSS ${(n.nodeRss / 2 ** 20).toFixed(0)} MiB, out ${(n.bitrateOutKbps / 1000).toFixed(1)} Mbit/s`);
  return {
    id: 'tree',
    title: `${viewers} viewers through a tree on one machine (origin + ${relays} relays, sink viewers)`,
    figures: [
      {
        name: `viewers receiving in the steady window, sink viewers negotiating transport-cc as browsers do (joined through the origin's URL at ${full ? 50 : 40}/s)`,
        value: today.receiving,
        unit: 'viewers',
        baseline: { name: 'viewers asked for', value: viewers, unit: 'viewers' },
        ratio: today.receiving / viewers,
        note: `Higher is better; 1.00 = every viewer received. ${lossNote(today)}; the sinks used ${(today.sinkCpu * 100).toFixed(0)} % of a core.`,
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
    ],
    details: { withTwcc: today, withoutTwcc: r, cpuLimit: CPU_LIMIT, relayFit: fit, originCopies: copies },
    warnings,
    durationMs: Date.now() - started,
  };
}

function round(v: number, digits: number): number {
  return Number.isFinite(v) ? Number(v.toFixed(digits)) : v;
}

function num(v: number | null): string {
  return v === null ? 'n/a' : v.toFixed(0);
}
