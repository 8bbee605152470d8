import WebSocket from 'ws';
import * as werift from 'werift';
import { issueToken, startRelay, startServer, waitFor, getJson, TEST_SECRET, type NodeProcess } from '@cascade/testing';
import { ensureClip } from '../clip.js';
import { wallClockMs } from '../clock.js';
import { LogHistogram } from '../LogHistogram.js';
import { SyntheticBroadcaster } from '../SyntheticBroadcaster.js';
import { installWeriftGlobals } from '@cascade/testing';
import { WeriftViewer } from '../WeriftViewer.js';
import type { BenchContext, BenchResult } from './types.js';

/**
 * Added delay per relay hop: the synthetic broadcaster stamps each frame with its send time;
 * viewers at depth 0 (origin), 1, 2 and 3 (a chain forced by K = 1 and one viewer per node)
 * read the stamp. Same process, same clock. Baseline: the origin viewer's delay.
 */
export async function runHopsBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const measureMs = ctx.scale === 'full' ? 30_000 : 8_000;
  const depth = 3;
  let origin: NodeProcess | undefined;
  const relays: NodeProcess[] = [];
  let broadcaster: SyntheticBroadcaster | undefined;
  const viewers: WeriftViewer[] = [];
  const warnings: string[] = [];
  const perDepth: { depth: number; nodeId: string; delay: ReturnType<LogHistogram['summary']> }[] = [];
  try {
    origin = await startServer({
      env: { CASCADE_ORIGIN_MAX_VIEWERS: '1', CASCADE_TOPOLOGY_MAX_CHILDREN: '1', CASCADE_LOG_LEVEL: 'warn' },
    });
    for (let i = 0; i < depth; i++) {
      relays.push(
        await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: `hop${i}` }), maxViewers: 1, maxChildren: 1 }),
      );
    }
    installWeriftGlobals();
    broadcaster = await SyntheticBroadcaster.start(
      { url: origin.url, token: issueToken({ scope: ['broadcast'], sub: 'bench' }, TEST_SECRET), clipPath: await ensureClip(), maxDurationSec: Math.ceil(measureMs / 1000) + 120 },
      { now: wallClockMs, warn: (m) => warnings.push(m) },
    );
    for (let i = 0; i <= depth; i++) {
      const v = new WeriftViewer(
        {
          url: origin.url,
          streamId: broadcaster.streamId,
          index: i,
          stamped: true,
          freezeGapMs: 500,
          joinTimeoutMs: 15_000,
          WebSocket: WebSocket as never,
          MediaStream: werift.MediaStream as never,
        },
        { now: wallClockMs },
      );
      await v.join();
      viewers.push(v);
    }
    const topo = await waitFor(async () => {
      const t = (await getJson<{ nodes: { id: string; depth: number; viewers: number }[] }>(`${origin!.url}/api/streams/${broadcaster!.streamId}/topology`)).body;
      return t.nodes?.length === depth + 1 && t.nodes.every((n) => n.viewers === 1) ? t : undefined;
    }, { what: 'a chain of depth 3', timeoutMs: 15_000 });
    // Warm-up, then measure over a fresh window.
    await new Promise((r) => setTimeout(r, 2000));
    const sink = new LogHistogram();
    for (const v of viewers) v.takeInterval(sink);
    for (const v of viewers) v.delayHistogram.reset();
    await new Promise((r) => setTimeout(r, measureMs));
    for (const v of viewers) {
      const r = v.result(0);
      const node = topo.nodes.find((n) => n.id === r.nodeId);
      perDepth.push({ depth: node?.depth ?? -1, nodeId: r.nodeId ?? '?', delay: v.delayHistogram.summary() });
    }
  } finally {
    for (const v of viewers) v.stop();
    await broadcaster?.stop();
    await Promise.all(relays.map((r) => r.stop()));
    await origin?.stop();
  }
  perDepth.sort((a, b) => a.depth - b.depth);
  const at = (d: number) => perDepth.find((p) => p.depth === d)?.delay;
  const d0 = at(0);
  const dN = at(depth);
  if (!d0 || !dN) throw new Error(`hops bench: missing depths ${JSON.stringify(perDepth.map((p) => p.depth))}`);
  const perHop = (dN.p50 - d0.p50) / depth;
  return {
    id: 'hops',
    title: 'Added delay per relay hop (loopback)',
    figures: [
      {
        name: `end-to-end delay through ${depth} relays, p50`,
        value: dN.p50,
        unit: 'ms',
        baseline: { name: 'delay at the origin (no relay), p50', value: d0.p50, unit: 'ms' },
        ratio: dN.p50 / d0.p50,
        note: `≈ ${perHop.toFixed(2)} ms added per hop (p50). Per depth p50/p95: ${perDepth.map((p) => `${p.depth}: ${p.delay?.p50.toFixed(1)}/${p.delay?.p95.toFixed(1)} ms`).join(', ')}. Lower is better. Loopback: this is forwarding cost, not network latency.`,
      },
    ],
    details: { perDepth, perHopMs: perHop },
    warnings,
    durationMs: Date.now() - started,
  };
}
