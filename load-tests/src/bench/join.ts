import { issueToken, launchChromium, startChromiumBroadcaster, startNodeViewer, startRelay, startServer, type NodeProcess, type NodeViewer } from '@cascade/testing';
import type { Browser } from 'playwright-core';
import { summarize } from '../stats.js';
import type { BenchContext, BenchResult } from './types.js';

/** Time from watch() to the first complete key frame (the first decodable frame) for one new viewer. */
async function timedJoin(url: string, streamId: string): Promise<{ ms: number | null; viewer: NodeViewer }> {
  const t0 = Date.now();
  const viewer = await startNodeViewer(url, streamId);
  // The viewer stamps its first key frame itself, even one that arrived before start() resolved.
  const deadline = t0 + 10_000;
  while (viewer.counters.firstKeyframeAt === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const at = viewer.counters.firstKeyframeAt;
  return { ms: at === undefined ? null : at - t0, viewer };
}

/**
 * Join to first frame: new viewers one after the other, first served by the origin, then
 * (origin budget used up) through a relay that already carries the stream. Figure: via a relay;
 * baseline: direct at the origin, same run.
 */
export async function runJoinBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const n = ctx.scale === 'full' ? 30 : 6;
  let origin: NodeProcess | undefined;
  let relay: NodeProcess | undefined;
  let browser: Browser | undefined;
  const viewers: NodeViewer[] = [];
  const direct: number[] = [];
  const viaRelay: number[] = [];
  let lost = 0;
  try {
    origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: String(n), CASCADE_LOG_LEVEL: 'warn' } });
    // A dedicated relay on a fast link: its declared upload leaves room for every join.
    relay = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'join' }), maxViewers: n + 5, args: ['--up-kbps', '1000000'] });
    browser = await launchChromium();
    const b = await startChromiumBroadcaster(origin.url, browser);
    for (const bucket of [direct, viaRelay]) {
      for (let i = 0; i < n; i++) {
        const r = await timedJoin(origin.url, b.streamId);
        viewers.push(r.viewer);
        if (r.ms === null) lost++;
        else bucket.push(r.ms);
        ctx.log(`join ${bucket === direct ? 'at the origin' : 'through the relay'} ${i + 1}/${n}: ${r.ms === null ? 'no key frame within 10 s' : `${r.ms} ms`} (${r.viewer.watch.nodeId})`);
        // Spaced a little more than the key frame throttle, so that each join asks for its own.
        await new Promise((res) => setTimeout(res, 1100));
      }
    }
  } finally {
    viewers.forEach((v) => v.stop());
    await browser?.close();
    await relay?.stop();
    await origin?.stop();
  }
  const d = summarize(direct);
  const r = summarize(viaRelay);
  if (!d || !r) throw new Error('join bench: no samples');
  return {
    id: 'join',
    title: 'Join to first frame',
    figures: [
      {
        name: 'join through a relay: watch() to first decodable frame, p50',
        value: r.p50,
        unit: 'ms',
        baseline: { name: 'join at the origin, p50', value: d.p50, unit: 'ms' },
        ratio: r.p50 / d.p50,
        note: `${n} joins each, one at a time; Chromium fake-camera broadcaster, werift viewers; key frame on request. Lower is better.`,
      },
      {
        name: 'join through a relay: watch() to first decodable frame, p95',
        value: r.p95,
        unit: 'ms',
        baseline: { name: 'join at the origin, p95', value: d.p95, unit: 'ms' },
        ratio: r.p95 / d.p95,
        note: `Max via relay ${r.max} ms, at the origin ${d.max} ms. A join whose first key frame request falls within a second of another one (another join, or a decoder's PLI) waits for the next key frame the throttle allows (origin.keyFrameRequestDelayMs = 1000).`,
      },
    ],
    details: { direct: d, viaRelay: r },
    warnings: lost > 0 ? [`${lost} joins saw no key frame within 10 s`] : [],
    durationMs: Date.now() - started,
  };
}
