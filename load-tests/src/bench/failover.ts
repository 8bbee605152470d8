import type { Browser } from 'playwright-core';
import {
  issueToken,
  launchChromium,
  startChromiumBroadcaster,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type TestBroadcaster,
} from '@cascade/testing';
import { summarize } from '../stats.js';
import type { BenchContext, BenchResult } from './types.js';

type Relay = NodeProcess & { nodeId: string };

/** A viewer whose first complete key frame on a track started after `since` we wait for. */
function nextKeyframe(v: NodeViewer, since: number, afterTrack: number, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(null), timeoutMs);
    const previous = v.onFrame;
    const done = (at: number | null) => {
      clearTimeout(timer);
      v.onFrame = previous;
      resolve(at);
    };
    v.onFrame = (at, key, track) => {
      previous?.(at, key, track);
      if (key && track > afterTrack && at >= since) done(at);
    };
  });
}

/**
 * Failover: viewers watching through a relay that dies (SIGKILL) or leaves (SIGTERM, a planned
 * move), repeatedly. Per viewer: time from the kill/signal to the first complete key frame
 * received from the new node, i.e. the first frame it can decode again. Baseline (same run):
 * a fresh join through a relay, from watch() to the first complete key frame.
 *
 * The broadcaster is Chromium's fake camera (key frames on request, as a real webcam), the
 * viewers receive-only werift clients in this process.
 */
export async function runFailoverBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const rounds = ctx.scale === 'full' ? 20 : 3;
  const perRelay = ctx.scale === 'full' ? 8 : 3;
  const warnings: string[] = [];
  let origin: NodeProcess | undefined;
  let browser: Browser | undefined;
  let broadcaster: TestBroadcaster | undefined;
  const relays: Relay[] = [];
  const viewers: NodeViewer[] = [];
  const keepers: NodeViewer[] = [];
  const samples: Record<'kill' | 'drain', number[]> = { kill: [], drain: [] };
  const joins: number[] = [];
  let failures = 0;
  const startRelayProc = async (i: number) =>
    relays[relays.push(await startRelay({ controllerUrl: origin!.url, token: issueToken({ scope: ['relay'], sub: `bench${i}` }), maxViewers: perRelay + 1, maxChildren: 2 })) - 1]!;
  try {
    origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_TOPOLOGY_MAX_CHILDREN: '2', CASCADE_LOG_LEVEL: 'warn' } });
    browser = await launchChromium();
    broadcaster = await startChromiumBroadcaster(origin.url, browser);
    const streamId = broadcaster.streamId;
    let current = await startRelayProc(0);
    keepers.push(await startNodeViewer(origin.url, streamId));
    for (let i = 0; i < perRelay; i++) {
      // Spaced beyond the key frame throttle so that each join is measured on its own.
      await new Promise((r) => setTimeout(r, 1100));
      const t0 = Date.now();
      const v = await startNodeViewer(origin.url, streamId);
      const at = await nextKeyframe(v, t0, 0, 15_000);
      if (at !== null) joins.push(at - t0);
      viewers.push(v);
    }
    if (!viewers.every((v) => v.watch.nodeId === current.nodeId)) warnings.push('setup: not every measured viewer was on the first relay');
    for (const mode of ['kill', 'drain'] as const) {
      for (let r = 0; r < rounds; r++) {
        const next = await startRelayProc(relays.length);
        // The current relay is full, so this viewer warms the next one up: the failover target carries the stream already.
        keepers.push(await startNodeViewer(origin.url, streamId));
        await waitFor(() => keepers.at(-1)!.watch.nodeId === next.nodeId || undefined, { what: 'the keeper on the spare relay', timeoutMs: 10_000 }).catch(() =>
          warnings.push(`round ${mode}#${r}: the spare relay was not warmed up by placement`),
        );
        keepers.at(-2)?.stop();
        // Let the key frame request of the keeper's join age past the throttle window
        // (origin.keyFrameRequestDelayMs), so that the failover is measured in steady state.
        await new Promise((r) => setTimeout(r, 1500));
        const tracks = viewers.map((v) => v.videoTracks);
        const t0 = Date.now();
        const waits = viewers.map((v, i) => nextKeyframe(v, t0, tracks[i]!, 15_000));
        if (mode === 'kill') await current.kill();
        else void current.stop('SIGTERM');
        const results = await Promise.all(waits);
        for (const at of results) {
          if (at === null) failures++;
          else samples[mode].push(at - t0);
        }
        if (mode === 'drain') await current.exited;
        ctx.log(`failover ${mode} round ${r + 1}/${rounds}: ${results.map((a) => (a === null ? 'lost' : `${a - t0}ms`)).join(' ')}`);
        current = next;
      }
    }
  } finally {
    for (const v of [...viewers, ...keepers]) v.stop();
    await broadcaster?.stop();
    await browser?.close();
    await Promise.all(relays.map((r) => r.kill()));
    await origin?.stop();
  }
  if (failures > 0) warnings.push(`${failures} viewer-rounds got no key frame within 15 s (counted as lost, not in the percentiles)`);
  const kill = summarize(samples.kill);
  const drain = summarize(samples.drain);
  const join = summarize(joins);
  if (!kill || !drain || !join) throw new Error('failover bench: no samples');
  return {
    id: 'failover',
    title: 'Failover: relay killed or drained while viewers watch through it',
    figures: [
      {
        name: 'relay killed (SIGKILL): kill to first decodable frame, p95',
        value: kill.p95,
        unit: 'ms',
        baseline: { name: 'fresh join through a relay: watch() to first decodable frame, p95', value: join.p95, unit: 'ms' },
        ratio: kill.p95 / join.p95,
        note: `p50 ${kill.p50} ms, max ${kill.max} ms over ${kill.count} viewer-failovers (${rounds} kills × ${perRelay} viewers). Lower is better; ratio < 1 means recovering is quicker than joining.`,
      },
      {
        name: 'planned move (SIGTERM drain): signal to first decodable frame on the new node, p95',
        value: drain.p95,
        unit: 'ms',
        baseline: { name: 'fresh join through a relay, p95', value: join.p95, unit: 'ms' },
        ratio: drain.p95 / join.p95,
        note: `p50 ${drain.p50} ms, max ${drain.max} ms over ${drain.count} moves. Make-before-break: the old node keeps playing until the new one has media, so this is time-to-switch, not a freeze.`,
      },
    ],
    details: { kill, drain, join, rounds, viewersPerRelay: perRelay },
    warnings,
    durationMs: Date.now() - started,
  };
}
