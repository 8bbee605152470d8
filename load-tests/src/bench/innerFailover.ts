import type { Browser, Page } from 'playwright-core';
import { getJson, issueToken, launchChromium, startChromiumBroadcaster, startRelay, startServer, waitFor, type NodeProcess, type TestBroadcaster } from '@cascade/testing';
import { HostCpu } from '../HostCpu.js';
import { summarize, type Summary } from '../stats.js';
import { browserViewer, longestGap, nextKeyframe, pageNode, presentedFrames, recordFrames, spawnViewer, type BenchViewer } from './failover.js';
import type { BenchContext, BenchResult } from './types.js';

type Relay = NodeProcess & { nodeId: string };
const MODES = ['kill', 'freeze'] as const;
type Mode = (typeof MODES)[number];
/** A viewer with no new picture this long after the failure counts as never recovered. */
const GIVE_UP_MS = 15_000;

interface Samples {
  /** Failure to the first complete key frame on a new track, werift viewers of the lost relay and of its child. */
  werift: { lost: number[]; below: number[] };
  /** Longest time without a presented frame around the failure, Chromium viewers. */
  chromium: { lost: number[]; below: number[] };
  failures: number;
}

/**
 * Failover of an inner relay: relay I under the origin serves viewers and feeds relay L, which
 * serves viewers of its own. I dies (SIGKILL) or freezes (SIGSTOP: nothing closes, nobody hears
 * from it). I's viewers must find another node; L must find another parent, and its viewers
 * keep their node while their pictures come from the new parent. Per viewer: time from the
 * failure to the first decodable frame again (werift: first complete key frame on a new track;
 * Chromium: the longest time without a presented frame). A fresh I and L each round; the origin
 * feeds a single relay (origin.maxChildRelays = 1) so that L goes under I.
 */
export async function runInnerFailoverBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const rounds = ctx.scale === 'full' ? 8 : 2;
  const perRelay = ctx.scale === 'full' ? 3 : 2;
  const warnings: string[] = [];
  const samples: Record<Mode, Samples> = {
    kill: { werift: { lost: [], below: [] }, chromium: { lost: [], below: [] }, failures: 0 },
    freeze: { werift: { lost: [], below: [] }, chromium: { lost: [], below: [] }, failures: 0 },
  };
  const cpu = new HostCpu();
  const busy: number[] = [];
  let origin: NodeProcess | undefined;
  let browser: Browser | undefined;
  let broadcaster: TestBroadcaster | undefined;
  let relayCount = 0;
  const newRelay = (maxViewers: number, maxChildren: number): Promise<Relay> =>
    startRelay({ controllerUrl: origin!.url, token: issueToken({ scope: ['relay'], sub: `inner${relayCount++}` }), maxViewers, maxChildren });
  try {
    origin = await startServer({
      env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_TOPOLOGY_MAX_CHILDREN: '2', CASCADE_ORIGIN_MAX_CHILD_RELAYS: '1', CASCADE_LOG_LEVEL: 'warn' },
    });
    browser = await launchChromium();
    broadcaster = await startChromiumBroadcaster(origin.url, browser);
    const streamId = broadcaster.streamId;
    for (const mode of MODES) {
      for (let r = 0; r < rounds; r++) {
        const inner = await newRelay(perRelay + 1, 1);
        const leaf = await newRelay(2 * perRelay + 4, 0);
        const viewers: { v: BenchViewer; lost: boolean }[] = [];
        const pages: { p: Page; lost: boolean }[] = [];
        try {
          for (let i = 0; i < perRelay; i++) viewers.push({ v: await spawnViewer(origin.url, streamId), lost: true });
          pages.push({ p: await browserViewer(browser, origin.url, streamId), lost: true });
          // The inner relay is full: these go to the leaf, attached under it.
          for (let i = 0; i < perRelay; i++) viewers.push({ v: await spawnViewer(origin.url, streamId), lost: false });
          pages.push({ p: await browserViewer(browser, origin.url, streamId), lost: false });
          const topo = (await getJson<{ nodes: { id: string; parent: string | null }[] }>(`${origin.url}/api/streams/${streamId}/topology`)).body.nodes;
          if (topo.find((n) => n.id === leaf.nodeId)?.parent !== inner.nodeId) warnings.push(`${mode}#${r}: the leaf relay was not under the inner one (${JSON.stringify(topo)})`);
          for (const x of viewers) if (x.v.nodeId !== (x.lost ? inner.nodeId : leaf.nodeId)) warnings.push(`${mode}#${r}: a werift viewer on ${x.v.nodeId}, not where expected`);
          for (const x of pages) if ((await pageNode(x.p)) !== (x.lost ? inner.nodeId : leaf.nodeId)) warnings.push(`${mode}#${r}: a browser viewer not where expected`);
          // Steady state: every viewer past its first key frame and its step-ups.
          await waitFor(() => viewers.every((x) => x.v.firstKeyframeAt !== undefined) || undefined, { what: 'every viewer playing', timeoutMs: 15_000 });
          await new Promise((res) => setTimeout(res, 2000));
          cpu.sample();
          const tracks = viewers.map((x) => x.v.videoTracks);
          const recorders = viewers.map((x) => recordFrames(x.v));
          const t0 = Date.now();
          const waits = viewers.map((x, i) => nextKeyframe(x.v, t0, tracks[i]!, GIVE_UP_MS));
          if (mode === 'kill') await inner.kill();
          else inner.freeze();
          const results = await Promise.all(waits);
          const windowEnd = Math.max(...results.map((a) => a ?? t0)) + 1000;
          await new Promise((res) => setTimeout(res, Math.max(0, windowEnd - Date.now())));
          const load = cpu.sample();
          if (load !== null) busy.push(load);
          results.forEach((at, i) => {
            recorders[i]!();
            if (at === null) samples[mode].failures++;
            else samples[mode].werift[viewers[i]!.lost ? 'lost' : 'below'].push(at - t0);
          });
          const gaps: string[] = [];
          for (const x of pages) {
            const gap = longestGap(await presentedFrames(x.p), t0 - 200, windowEnd);
            gaps.push(`${x.lost ? 'I' : 'L'}:${gap}ms`);
            if (gap >= GIVE_UP_MS) samples[mode].failures++;
            else samples[mode].chromium[x.lost ? 'lost' : 'below'].push(gap);
          }
          ctx.log(`inner relay ${mode} round ${r + 1}/${rounds}: werift ${results.map((a, i) => `${viewers[i]!.lost ? 'I' : 'L'}:${a === null ? 'lost' : `${a - t0}ms`}`).join(' ')}; Chromium ${gaps.join(' ')}; cpu ${load?.toFixed(0)} %`);
        } finally {
          for (const x of viewers) x.v.stop();
          for (const x of pages) await x.p.close().catch(() => {});
          await inner.kill();
          await leaf.kill();
        }
        // The origin's relay slot frees once the controller has seen both go.
        await new Promise((res) => setTimeout(res, 1500));
      }
    }
  } finally {
    await broadcaster?.stop();
    await browser?.close();
    await origin?.stop();
  }
  const all = (m: Mode) => [...samples[m].werift.lost, ...samples[m].werift.below, ...samples[m].chromium.lost, ...samples[m].chromium.below];
  const s = (v: number[]): Summary => summarize(v) ?? { count: 0, min: NaN, max: NaN, mean: NaN, p50: NaN, p95: NaN, p99: NaN };
  const kill = s(all('kill'));
  const freeze = s(all('freeze'));
  if (kill.count === 0 || freeze.count === 0) throw new Error('inner failover bench: no samples');
  const failures = samples.kill.failures + samples.freeze.failures;
  if (failures > 0) warnings.push(`${failures} viewer-failovers never recovered within ${GIVE_UP_MS / 1000} s (counted as failures, not in the percentiles)`);
  const cpuLoad = s(busy);
  const part = (m: Mode) => {
    const x = samples[m];
    const f = (v: number[]) => {
      const y = s(v);
      return y.count ? `p50 ${y.p50} / p95 ${y.p95} ms (${y.count})` : '–';
    };
    return `werift viewers of the lost relay ${f(x.werift.lost)}, of its child relay ${f(x.werift.below)}; Chromium of the lost relay ${f(x.chromium.lost)}, of its child ${f(x.chromium.below)}`;
  };
  return {
    id: 'innerFailover',
    title: 'Failover of an inner relay (one that feeds another relay): every viewer below it',
    figures: [
      {
        name: 'inner relay killed (SIGKILL): failure to the first decodable frame again, every viewer below it, p95',
        value: kill.p95,
        unit: 'ms',
        baseline: { name: 'inner relay frozen (SIGSTOP), the same, p95', value: freeze.p95, unit: 'ms' },
        ratio: kill.p95 / freeze.p95,
        note: `p50 ${kill.p50} ms, max ${kill.max} ms over ${kill.count} viewer-failovers (${rounds} kills, ${perRelay} werift + 1 Chromium viewer on the killed relay and as many on the relay it fed). ${part('kill')}. ${samples.kill.failures} never recovered. Target: p95 < 1000 ms. Lower is better.`,
      },
      {
        name: 'inner relay frozen (SIGSTOP: silent, nothing closes): failure to the first decodable frame again, every viewer below it, p95',
        value: freeze.p95,
        unit: 'ms',
        baseline: { name: 'inner relay killed, the same, p95', value: kill.p95, unit: 'ms' },
        ratio: freeze.p95 / kill.p95,
        note: `p50 ${freeze.p50} ms, max ${freeze.max} ms over ${freeze.count} viewer-failovers (${rounds} freezes). ${part('freeze')}. ${samples.freeze.failures} never recovered. Machine busy during the failovers: p50 ${cpuLoad.p50?.toFixed?.(0)} %, max ${cpuLoad.max?.toFixed?.(0)} % of all cores. Target: p95 < 1000 ms.`,
      },
    ],
    details: { samples, kill, freeze, cpuBusyPercent: cpuLoad, rounds, viewersPerRelay: perRelay + 1 },
    warnings,
    durationMs: Date.now() - started,
  };
}
