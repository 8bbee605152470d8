import { canCreateNamespaces, createTestNetwork, startChromiumBroadcaster, startServer, type NodeProcess, type TestBroadcaster, type TestNetwork } from '@cascade/testing';
import { HostCpu } from '../HostCpu.js';
import type { ViewerResult } from '../LoadTestTypes.js';
import { ViewerFleet } from '../ViewerFleet.js';
import type { BenchContext, BenchFigure, BenchResult } from './types.js';

/** A quality and the highest layer it allows on a three-layer stream. */
const QUALITIES = [
  { quality: 'low', layer: 0 },
  { quality: 'medium', layer: 1 },
  { quality: 'high', layer: 2 },
] as const;
type Q = (typeof QUALITIES)[number]['quality'];
/** Playable: loss below this share and no freeze of a second or more. */
const PLAYABLE_LOSS = 0.02;
const PLAYABLE_FREEZE_MS = 1000;

interface Point {
  quality: Q;
  /** kbit/s each way; 0: no cap (the baseline). */
  capKbit: number;
  lossPct: number | null;
  bitrateKbps: number | null;
  freezes: number | null;
  longestFreezeMs: number | null;
  /** Share of the time with video on each spatial layer, lowest first. */
  shareOnLayer: number[];
  ok: boolean;
}

function point(quality: Q, capKbit: number, v: ViewerResult | undefined): Point {
  const rtp = v?.rtp;
  const ms = v?.layers?.msPerLayer ?? [];
  const total = ms.reduce((a, b) => a + b, 0);
  return {
    quality,
    capKbit,
    lossPct: rtp ? rtp.lossFraction * 100 : null,
    bitrateKbps: rtp ? Math.round(rtp.bitrateKbps) : null,
    freezes: rtp ? rtp.freezes : null,
    longestFreezeMs: rtp ? Math.round(rtp.longestFreezeMs) : null,
    shareOnLayer: total > 0 ? ms.map((x) => Math.round((x / total) * 100) / 100) : [],
    ok: !!v?.ok && !!rtp && rtp.packets > 0,
  };
}

/** What the qualities gather: a point per viewer, how busy the machine was per quality, warnings. */
interface Tally {
  points: Point[];
  busy: number[];
  warnings: string[];
  cpu: HostCpu;
}

const playable = (p: Point) => p.ok && p.lossPct !== null && p.lossPct < PLAYABLE_LOSS * 100 && (p.longestFreezeMs ?? Infinity) < PLAYABLE_FREEZE_MS;

/**
 * Bitrate to loss, per layer: a Chromium broadcaster sends three simulcast layers (a testsrc
 * camera, so that each layer reaches its bitrate); werift viewers that offer transport-cc (as
 * browsers do) watch at 'low' (layer 0 only), 'medium' (at most layer 1) and 'high' (up to the
 * top layer, as their bandwidth estimate allows), each behind a link of its own capped at one
 * of a series of rates (the userspace switch of the test networks: a 2 s buffer, then drops),
 * plus one uncapped viewer per quality as the baseline, one quality after the other, each for a fixed time. Per
 * viewer: packet loss after NACK/RTX repair, received bitrate, freezes (no frame for 500 ms),
 * and the time on each layer. Figure per quality: the lowest cap at which it played (loss
 * under 2 %, no freeze of a second), against the bitrate it received uncapped. Bounded: one
 * round of fixed length.
 */
export async function runLayerLossBench(ctx: BenchContext): Promise<BenchResult> {
  const started = Date.now();
  const full = ctx.scale === 'full';
  const caps = full ? [150, 250, 400, 650, 1000, 1600, 2500] : [250, 900, 2200];
  const measureMs = full ? 30_000 : 15_000;
  const support = await canCreateNamespaces();
  if (!support.ok) throw new Error(`the layer loss bench needs network namespaces: ${support.reason}`);
  // Per quality: every cap, then the uncapped baseline.
  const perQuality = [...caps, 0];
  const tally: Tally = { points: [], busy: [], warnings: [], cpu: new HostCpu() };
  let net: TestNetwork | undefined;
  let origin: NodeProcess | undefined;
  let b: TestBroadcaster | undefined;
  try {
    net = await createTestNetwork({ count: QUALITIES.length * perQuality.length, rateKbit: QUALITIES.flatMap(() => perQuality) });
    // The origin on the test subnet: the viewers' namespaces reach it there, its answers come from that address.
    origin = await startServer({
      host: net.rootIp,
      env: { CASCADE_HTTP_HOST: '0.0.0.0', CASCADE_MEDIASOUP_LISTEN_IPS: JSON.stringify([{ ip: net.rootIp, announcedIp: net.rootIp }]), CASCADE_LOG_LEVEL: 'warn' },
    });
    // The broadcast page from 127.0.0.1: a secure context, so that it may use the camera.
    b = await startChromiumBroadcaster(`http://127.0.0.1:${origin.port}`, undefined, { height: 720, camera: 'testsrc' });
    await new Promise((res) => setTimeout(res, 3000));
    const names = net.namespaces.map((n) => n.name);
    ctx.log(`caps ${caps.join(', ')} kbit/s and none, one viewer each, qualities ${QUALITIES.map((q) => q.quality).join(', ')} one after the other, ${measureMs / 1000} s each; ${net.shaping}`);
    // One quality at a time: a viewer process per link, the broadcaster's encoder and the server
    // all share this machine, and a saturated machine would measure itself.
    for (const [qi, { quality }] of QUALITIES.entries()) {
      const netns = names.slice(qi * perQuality.length, (qi + 1) * perQuality.length);
      await measureQuality(ctx, { url: origin.url, streamId: b.streamId, netns, quality, perQuality, measureMs }, tally);
    }
  } finally {
    await b?.stop();
    await origin?.stop();
    await net?.cleanup();
  }
  return layerLossResult(caps, measureMs, tally, started);
}

/** One quality: a viewer behind each capped link (and one uncapped) for measureMs, each viewer's point logged. */
async function measureQuality(
  ctx: BenchContext,
  q: { url: string; streamId: string; netns: string[]; quality: Q; perQuality: number[]; measureMs: number },
  tally: Tally,
): Promise<void> {
  const { url, netns, quality, measureMs } = q;
  const { points, busy } = tally;
  const fleet = new ViewerFleet({
    url,
    streamId: q.streamId,
    viewers: netns.length,
    processes: 1,
    rampPerSec: 4,
    durationMs: measureMs,
    stamped: false,
    freezeGapMs: 500,
    joinTimeoutMs: 15_000,
    capped: { netns, url },
    werift: { quality, twcc: true },
  });
  try {
    await fleet.start();
    tally.cpu.sample();
    await new Promise((res) => setTimeout(res, measureMs));
    const load = tally.cpu.sample();
    if (load !== null) busy.push(load);
  } finally {
    const r = await fleet.stop();
    tally.warnings.push(...r.warnings);
    // Viewer indexes follow the namespaces: the fleet numbers its capped viewers in order.
    const byIndex = [...r.viewers].sort((x, y) => x.index - y.index);
    q.perQuality.forEach((cap, i) => points.push(point(quality, cap, byIndex[i])));
  }
  for (const p of points.filter((x) => x.quality === quality)) {
    ctx.log(`${p.quality} cap ${p.capKbit || 'none'}: loss ${p.lossPct?.toFixed(1) ?? '–'} %, ${p.bitrateKbps ?? '–'} kbit/s, freezes ${p.freezes ?? '–'} (longest ${p.longestFreezeMs ?? '–'} ms), layers ${p.shareOnLayer.join('/') || '–'}`);
  }
  ctx.log(`${quality}: machine ${busy.at(-1)?.toFixed(0) ?? '?'} % busy`);
}

/** A figure per quality that played somewhere, the table of every point, and what weakens them. */
function layerLossResult(caps: number[], measureMs: number, tally: Tally, started: number): BenchResult {
  const { points, busy, warnings } = tally;
  const figures = QUALITIES.flatMap(({ quality, layer }) => qualityFigure(quality, layer, points, caps, measureMs, warnings));
  const maxBusy = busy.length ? Math.max(...busy) : null;
  if (maxBusy !== null && maxBusy > 85) warnings.push(`machine up to ${maxBusy.toFixed(0)} % busy while measuring: loss partly measures the machine`);
  return {
    id: 'layerLoss',
    title: 'Bitrate to loss, per simulcast layer',
    figures,
    details: { points, caps, measureMs, machineBusyPercentPerQuality: busy, stopReason: `one round of ${measureMs / 1000} s per quality` },
    warnings,
    markdown: pointTable(points),
    durationMs: Date.now() - started,
  };
}

/** A quality's lowest playable cap against what it received uncapped; none (a warning instead) when no cap played. */
function qualityFigure(quality: Q, layer: number, points: Point[], caps: number[], measureMs: number, warnings: string[]): BenchFigure[] {
  const rows = points.filter((p) => p.quality === quality);
  const base = rows.find((p) => p.capKbit === 0);
  const lowest = rows.filter((p) => p.capKbit > 0 && playable(p)).sort((x, y) => x.capKbit - y.capKbit)[0];
  const baseKbps = base?.bitrateKbps ?? NaN;
  const value = lowest?.capKbit ?? NaN;
  if (!lowest) warnings.push(`quality ${quality}: no cap up to ${caps.at(-1)} kbit/s played (loss < ${PLAYABLE_LOSS * 100} %, no freeze of ${PLAYABLE_FREEZE_MS} ms): no figure`);
  // No figure without both numbers (JSON has no NaN); the table still shows the curve.
  if (!lowest || !Number.isFinite(baseKbps) || baseKbps <= 0) return [];
  return [
    {
      name: `quality '${quality}' (layer ${layer}${layer > 0 ? ' at most' : ''}): lowest link that plays it (loss < ${PLAYABLE_LOSS * 100} %, no freeze ≥ ${PLAYABLE_FREEZE_MS / 1000} s)`,
      value,
      unit: 'kbit/s',
      baseline: { name: `what it received uncapped`, value: baseKbps, unit: 'kbit/s' },
      ratio: value / baseKbps,
      note: `Loss by cap: ${rows.map((p) => `${p.capKbit || 'none'}: ${p.lossPct === null ? 'no video' : `${p.lossPct.toFixed(1)} %`}`).join(', ')} (kbit/s: loss after NACK/RTX repair). One viewer per cap, ${measureMs / 1000} s, the caps of one quality at once. Lower is better.`,
    },
  ];
}

/** Every point, for BENCHMARKS.md: the whole curve per quality, whether or not it gave a figure. */
function pointTable(points: Point[]): string {
  return [
    '| quality | cap kbit/s | loss % | received kbit/s | freezes | longest freeze ms | time on layer 0/1/2 |',
    '|---|---|---|---|---|---|---|',
    ...points.map(
      (p) =>
        `| ${p.quality} | ${p.capKbit || 'none'} | ${p.lossPct?.toFixed(1) ?? '–'} | ${p.bitrateKbps ?? '–'} | ${p.freezes ?? '–'} | ${p.longestFreezeMs ?? '–'} | ${p.shareOnLayer.map((x) => `${Math.round(x * 100)} %`).join(' / ') || '–'} |`,
    ),
  ].join('\n');
}
