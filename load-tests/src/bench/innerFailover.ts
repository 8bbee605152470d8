import type { Browser, Page } from 'playwright-core';
import { getJson, issueToken, launchChromium, startChromiumBroadcaster, startRelay, startServer, waitFor, type NodeProcess, type TestBroadcaster } from '@cascade/testing';
import { HostCpu } from '../HostCpu.js';
import { summarize, type Summary } from '../stats.js';
import { browserViewer, longestGap, nextKeyframe, pageNode, presentedFrames, recordFrames, spawnViewer, type BenchViewer } from './failover.js';
import type { BenchContext, BenchResult } from './types.js';

type Relay = NodeProcess & { nodeId: string };
const MODES = ['kill', 'freeze'] as const;
type Mode = (typeof MODES)[number];
/** Which relay fails: I (it feeds L) or the leaf L under it. */
type Target = 'inner' | 'leaf';
type Case = `${Target}-${Mode}`;
const CASES: Case[] = ['inner-kill', 'inner-freeze', 'leaf-kill', 'leaf-freeze'];
/** A viewer with no new picture this long after the failure counts as never recovered. */
const GIVE_UP_MS = 15_000;

interface Samples {
  /** Failure to the first complete key frame on a new track, werift viewers of the lost relay and of its child. */
  werift: { lost: number[]; below: number[] };
  /** Longest time without a presented frame around the failure, Chromium viewers. */
  chromium: { lost: number[]; below: number[] };
  failures: number;
  rounds: number;
  /** Rounds not measured: the tree or the viewers were not as the case needs (a viewer not below the failed relay cannot fail over). */
  skipped: number;
}

/**
 * Failover of an inner relay and of a leaf: relay I under the origin serves viewers and feeds
 * relay L, which serves viewers of its own. I dies (SIGKILL) or freezes (SIGSTOP: nothing
 * closes, nobody hears from it): I's viewers must find another node; L must find another
 * parent, and its viewers keep their node while their pictures come from the new parent. Or L
 * dies or freezes: its viewers move to a spare relay S that came up under I once everyone was
 * placed (I's viewers are not measured then). Per viewer: time from the failure to the first
 * decodable frame again (werift: first complete key frame on a new track; Chromium: the longest
 * time without a presented frame). A fresh I and L each round; the origin feeds a single relay
 * (origin.maxChildRelays = 1) so that L goes under I. Bounded by a number of rounds per case
 * and a time budget, whichever comes first.
 */
export async function runInnerFailoverBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const full = ctx.scale === 'full';
  const roundsOf = (c: Case) => (c.startsWith('inner') ? (full ? 5 : 2) : full ? 4 : 1);
  const budgetMs = full ? 8 * 60_000 : 4 * 60_000;
  const perRelay = full ? 3 : 2;
  const warnings: string[] = [];
  const fresh = (): Samples => ({ werift: { lost: [], below: [] }, chromium: { lost: [], below: [] }, failures: 0, rounds: 0, skipped: 0 });
  const samples = Object.fromEntries(CASES.map((c) => [c, fresh()])) as Record<Case, Samples>;
  let stopReason = `every case ran its rounds (${CASES.map((c) => `${c} ${roundsOf(c)}`).join(', ')})`;
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
    cases: for (const c of CASES) {
      const [target, mode] = c.split('-') as [Target, Mode];
      for (let r = 0; r < roundsOf(c); r++) {
        if (Date.now() - started > budgetMs) {
          stopReason = `time budget of ${budgetMs / 60_000} min reached during ${c} (rounds run: ${CASES.map((x) => `${x} ${samples[x].rounds}`).join(', ')})`;
          warnings.push(stopReason);
          break cases;
        }
        // For a leaf case, I keeps a slot for the spare relay that takes L's viewers.
        const inner = await newRelay(perRelay + 1, target === 'leaf' ? 2 : 1);
        const leaf = await newRelay(2 * perRelay + 4, 0);
        let spare: Relay | undefined;
        const viewers: { v: BenchViewer; lost: boolean }[] = [];
        const pages: { p: Page; lost: boolean }[] = [];
        try {
          for (let i = 0; i < perRelay; i++) viewers.push({ v: await spawnViewer(origin.url, streamId), lost: true });
          pages.push({ p: await browserViewer(browser, origin.url, streamId), lost: true });
          // The inner relay is full: these go to the leaf, attached under it.
          for (let i = 0; i < perRelay; i++) viewers.push({ v: await spawnViewer(origin.url, streamId), lost: false });
          pages.push({ p: await browserViewer(browser, origin.url, streamId), lost: false });
          const topo = (await getJson<{ nodes: { id: string; parent: string | null }[] }>(`${origin.url}/api/streams/${streamId}/topology`)).body.nodes;
          const misplaced: string[] = [];
          if (topo.find((n) => n.id === leaf.nodeId)?.parent !== inner.nodeId) misplaced.push(`the leaf relay was not under the inner one (${JSON.stringify(topo)})`);
          for (const x of viewers) if (x.v.nodeId !== (x.lost ? inner.nodeId : leaf.nodeId)) misplaced.push(`a werift viewer on ${x.v.nodeId}`);
          for (const x of pages) if ((await pageNode(x.p)) !== (x.lost ? inner.nodeId : leaf.nodeId)) misplaced.push('a browser viewer elsewhere');
          if (misplaced.length) {
            // Not the case measured here: its failures would be counted for viewers that never lost anything.
            samples[c].skipped++;
            warnings.push(`${c}#${r}: round skipped, not the tree the case needs: ${misplaced.join('; ')}`);
            ctx.log(`${c} round ${r + 1}/${roundsOf(c)}: skipped (${misplaced.join('; ')})`);
            continue;
          }
          if (target === 'leaf') spare = await newRelay(2 * perRelay + 4, 0);
          // Steady state: every viewer past its first key frame and its step-ups.
          await waitFor(() => viewers.every((x) => x.v.firstKeyframeAt !== undefined) || undefined, { what: 'every viewer playing', timeoutMs: 15_000 });
          await new Promise((res) => setTimeout(res, 2000));
          cpu.sample();
          // Inner case: every viewer is below the failed relay ('lost' on it, the others on its child).
          // Leaf case: only the leaf's viewers are, and they all lost their node.
          const measured = target === 'inner' ? viewers : viewers.filter((x) => !x.lost).map((x) => ({ ...x, lost: true }));
          const measuredPages = target === 'inner' ? pages : pages.filter((x) => !x.lost).map((x) => ({ ...x, lost: true }));
          const failed = target === 'inner' ? inner : leaf;
          const tracks = measured.map((x) => x.v.videoTracks);
          const recorders = measured.map((x) => recordFrames(x.v));
          const t0 = Date.now();
          const waits = measured.map((x, i) => nextKeyframe(x.v, t0, tracks[i]!, GIVE_UP_MS));
          if (mode === 'kill') await failed.kill();
          else failed.freeze();
          const results = await Promise.all(waits);
          const windowEnd = Math.max(...results.map((a) => a ?? t0)) + 1000;
          await new Promise((res) => setTimeout(res, Math.max(0, windowEnd - Date.now())));
          const load = cpu.sample();
          if (load !== null) busy.push(load);
          results.forEach((at, i) => {
            recorders[i]!();
            if (at === null) samples[c].failures++;
            else samples[c].werift[measured[i]!.lost ? 'lost' : 'below'].push(at - t0);
          });
          const gaps: string[] = [];
          for (const x of measuredPages) {
            const gap = longestGap(await presentedFrames(x.p), t0 - 200, windowEnd);
            gaps.push(`${x.lost ? 'lost' : 'below'}:${gap}ms`);
            if (gap >= GIVE_UP_MS) samples[c].failures++;
            else samples[c].chromium[x.lost ? 'lost' : 'below'].push(gap);
          }
          samples[c].rounds++;
          ctx.log(`${c} round ${r + 1}/${roundsOf(c)}: werift ${results.map((a, i) => `${measured[i]!.lost ? 'lost' : 'below'}:${a === null ? 'never' : `${a - t0}ms`}`).join(' ')}; Chromium ${gaps.join(' ')}; cpu ${load?.toFixed(0)} %`);
        } finally {
          for (const x of viewers) x.v.stop();
          for (const x of pages) await x.p.close().catch(() => {});
          await inner.kill();
          await leaf.kill();
          await spare?.kill();
          // The origin's relay slot frees once the controller has seen them go: the next round's
          // inner relay must take it (a frozen one is noticed only when its heartbeats expire).
          const gone = [inner.nodeId, leaf.nodeId, ...(spare ? [spare.nodeId] : [])];
          const cleared = await waitFor(
            async () => (await getJson<{ nodes: { id: string }[] }>(`${origin!.url}/api/nodes`)).body.nodes.every((n) => !gone.includes(n.id)) || undefined,
            { what: "this round's relays gone from the controller", timeoutMs: 20_000 },
          ).catch(() => false);
          if (!cleared) warnings.push(`${c}#${r}: the controller still listed this round's relays 20 s after they ended`);
        }
      }
    }
  } finally {
    await broadcaster?.stop();
    await browser?.close();
    await origin?.stop();
  }
  const all = (c: Case) => [...samples[c].werift.lost, ...samples[c].werift.below, ...samples[c].chromium.lost, ...samples[c].chromium.below];
  const s = (v: number[]): Summary => summarize(v) ?? { count: 0, min: NaN, max: NaN, mean: NaN, p50: NaN, p95: NaN, p99: NaN };
  const sums = Object.fromEntries(CASES.map((c) => [c, s(all(c))])) as Record<Case, Summary>;
  if (sums['inner-kill'].count === 0 || sums['inner-freeze'].count === 0) throw new Error('inner failover bench: no samples');
  const failures = CASES.reduce((n, c) => n + samples[c].failures, 0);
  if (failures > 0) warnings.push(`${failures} viewer-failovers never recovered within ${GIVE_UP_MS / 1000} s (counted as failures, not in the percentiles)`);
  const cpuLoad = s(busy);
  const part = (c: Case) => {
    const x = samples[c];
    const f = (v: number[]) => {
      const y = s(v);
      return y.count ? `p50 ${y.p50} / p95 ${y.p95} ms (${y.count})` : '–';
    };
    return c.startsWith('inner')
      ? `werift viewers of the lost relay ${f(x.werift.lost)}, of its child relay ${f(x.werift.below)}; Chromium of the lost relay ${f(x.chromium.lost)}, of its child ${f(x.chromium.below)}`
      : `werift viewers of the lost leaf ${f(x.werift.lost)}; Chromium ${f(x.chromium.lost)}`;
  };
  const label: Record<Case, string> = {
    'inner-kill': 'inner relay killed (SIGKILL)',
    'inner-freeze': 'inner relay frozen (SIGSTOP: silent, nothing closes)',
    'leaf-kill': 'leaf relay killed (SIGKILL)',
    'leaf-freeze': 'leaf relay frozen (SIGSTOP)',
  };
  const other: Record<Case, Case> = { 'inner-kill': 'inner-freeze', 'inner-freeze': 'inner-kill', 'leaf-kill': 'leaf-freeze', 'leaf-freeze': 'leaf-kill' };
  const figures = CASES.filter((c) => sums[c].count > 0 && sums[other[c]].count > 0).map((c) => {
    const x = sums[c];
    const scope = c.startsWith('inner') ? 'every viewer below it' : 'its viewers';
    const who = c.startsWith('inner') ? `${perRelay} werift + 1 Chromium viewer on the failed relay and as many on the relay it fed` : `${perRelay} werift + 1 Chromium viewer on the leaf, moving to a spare relay`;
    return {
      name: `${label[c]}: failure to the first decodable frame again, ${scope}, p95`,
      value: x.p95,
      unit: 'ms',
      baseline: { name: `${label[other[c]]}, the same, p95`, value: sums[other[c]].p95, unit: 'ms' },
      ratio: x.p95 / sums[other[c]].p95,
      note: `p50 ${x.p50} ms, max ${x.max} ms over ${x.count} viewer-failovers in ${samples[c].rounds} events (${who}); ${samples[c].skipped} rounds skipped (tree not as needed). ${part(c)}. ${samples[c].failures} never recovered. Target: p95 < 1000 ms. Lower is better.`,
    };
  });
  return {
    id: 'innerFailover',
    title: 'Failover of an inner relay (one that feeds another relay) and of a leaf: every viewer below it',
    figures,
    details: { samples, summaries: sums, cpuBusyPercent: cpuLoad, roundsPerCase: Object.fromEntries(CASES.map((c) => [c, roundsOf(c)])), viewersPerRelay: perRelay + 1, stopReason },
    warnings: [...warnings, `machine busy during the failovers: p50 ${cpuLoad.p50?.toFixed?.(0)} %, max ${cpuLoad.max?.toFixed?.(0)} % of all cores; stop: ${stopReason}`],
    durationMs: Date.now() - started,
  };
}
