/** Turns raw per-viewer, per-node and per-process data into the report's summary. */
import type { DecoderResult, GeneratorSeries, LoadTestSummary, NodeSeries, NodeSummary, TimelinePoint, ViewerResult } from './LoadTestTypes.js';
import { summarizeLayers } from './layers.js';
import { LogHistogram, type LogHistogramJSON } from './LogHistogram.js';
import { summarize } from './stats.js';

export interface SummaryInput {
  target: number;
  timeline: readonly TimelinePoint[];
  viewers: readonly ViewerResult[];
  decoders: readonly DecoderResult[];
  nodes: readonly NodeSeries[];
  generator: readonly GeneratorSeries[];
  delay: LogHistogramJSON;
}

const nums = (xs: readonly (number | null | undefined)[]): number[] => xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
const maxOf = (xs: number[]): number | null => (xs.length ? Math.max(...xs) : null);

export function summarizeRun(input: SummaryInput): LoadTestSummary {
  const { viewers } = input;
  const started = viewers.filter((v) => v.startedAt > 0);
  const joined = viewers.filter((v) => v.joinMs !== null);
  const failuresByCode: Record<string, number> = {};
  for (const v of started) {
    if (v.error) failuresByCode[v.error.code] = (failuresByCode[v.error.code] ?? 0) + 1;
  }
  const withRtp = joined.filter((v) => v.rtp && v.rtp.packets > 0);
  let lost = 0;
  let expected = 0;
  for (const v of withRtp) {
    lost += v.rtp!.lost;
    expected += v.rtp!.expected;
  }
  return {
    viewers: {
      target: input.target,
      started: started.length,
      joined: joined.length,
      failed: started.filter((v) => v.joinMs === null).length,
      failuresByCode,
    },
    joinMs: summarize(nums(joined.map((v) => v.joinMs))),
    firstPacketMs: summarize(nums(joined.map((v) => v.firstPacketMs))),
    firstFrameMs: summarize(nums(joined.map((v) => v.firstFrameMs))),
    bitrateKbps: summarize(withRtp.map((v) => v.rtp!.bitrateKbps)),
    lossPct: summarize(withRtp.map((v) => v.rtp!.lossFraction * 100)),
    lossPctOverall: expected > 0 ? (lost / expected) * 100 : null,
    jitterMs: summarize(withRtp.map((v) => v.rtp!.jitterMs)),
    freezesPerViewer: summarize(withRtp.map((v) => v.rtp!.freezes)),
    freezeMsPerViewer: summarize(withRtp.map((v) => v.rtp!.freezeTotalMs)),
    delayMs: LogHistogram.fromJSON(input.delay).summary(),
    nodes: input.nodes.map((n) => summarizeNode(n, viewers)),
    generator: summarizeGenerator(input.generator, input.timeline),
    decoders: summarizeDecoders(input.decoders),
    layers: summarizeLayers(viewers, input.decoders),
  };
}

export function summarizeNode(n: NodeSeries, viewers: readonly ViewerResult[]): NodeSummary {
  const served = viewers.filter((v) => v.nodeId === n.id && v.rtp && v.rtp.packets > 0);
  let lost = 0;
  let expected = 0;
  for (const v of served) {
    lost += v.rtp!.lost;
    expected += v.rtp!.expected;
  }
  const perViewer: number[] = [];
  for (const s of n.samples) {
    if (s.cpuCores !== null && s.viewers !== null && s.viewers > 0) perViewer.push((s.cpuCores * 100) / s.viewers);
  }
  return {
    id: n.id,
    kind: n.kind,
    viewersMax: maxOf(nums(n.samples.map((s) => s.viewers))),
    consumersMax: maxOf(nums(n.samples.map((s) => s.consumers))),
    cpuCores: summarize(nums(n.samples.map((s) => s.cpuCores))),
    cpuPerViewerPct: summarize(perViewer),
    rssMaxBytes: maxOf(nums(n.samples.map((s) => s.rssBytes))),
    bitrateOutKbps: summarize(nums(n.samples.map((s) => s.bitrateOutKbps))),
    servedViewers: served.length,
    rxKbpsPerViewer: summarize(served.map((v) => v.rtp!.bitrateKbps)),
    lossPct: expected > 0 ? (lost / expected) * 100 : null,
  };
}

function summarizeGenerator(gen: readonly GeneratorSeries[], timeline: readonly TimelinePoint[]): LoadTestSummary['generator'] {
  const cpu = gen.flatMap((g) => g.samples.map((s) => s.cpuPct));
  return {
    processes: gen.length,
    viewersPerProcess: gen.map((g) => g.viewers),
    cpuPctPerProcess: summarize(cpu),
    rssMaxBytes: maxOf(gen.flatMap((g) => g.samples.map((s) => s.rssBytes))),
    hostCpuPct: summarize(nums(timeline.map((p) => p.hostCpuPct))),
  };
}

function summarizeDecoders(decoders: readonly DecoderResult[]): LoadTestSummary['decoders'] {
  const fps: number[] = [];
  let freezeCount = 0;
  let frameWidth: number | null = null;
  const delay = new LogHistogram();
  for (const d of decoders) {
    const last = d.samples[d.samples.length - 1];
    for (const s of d.samples) if (s.framesPerSecond !== null) fps.push(s.framesPerSecond);
    if (last) {
      freezeCount += last.freezeCount;
      if (last.frameWidth !== null) frameWidth = Math.max(frameWidth ?? 0, last.frameWidth);
    }
    if (d.renderDelayHistogram) delay.merge(d.renderDelayHistogram);
  }
  return {
    count: decoders.length,
    ok: decoders.filter((d) => d.ok).length,
    fps: summarize(fps),
    freezeCount,
    frameWidth,
    renderDelayMs: delay.summary(),
  };
}

/** Generator saturation worth a warning: its figures then describe the generator, not the server. */
export function saturationWarnings(s: LoadTestSummary): string[] {
  const out: string[] = [];
  const g = s.generator;
  if (g.cpuPctPerProcess && g.cpuPctPerProcess.p95 > 90) {
    out.push(
      `viewer processes were at ${g.cpuPctPerProcess.p95.toFixed(0)} % of a core (p95): they delay packets themselves; use more --processes (on more cores or machines) or fewer --viewers`,
    );
  }
  if (g.hostCpuPct && g.hostCpuPct.p50 > 85) {
    out.push(`this machine was ${g.hostCpuPct.p50.toFixed(0)} % busy (p50 of all cores): delay, jitter and freezes partly measure the load generator`);
  }
  return out;
}

/**
 * mediasoup forwards a simple consumer's RTP timestamps unchanged, which the delay measure
 * relies on. If something on the path rewrites them, stamps land far from now: say so.
 */
export function stampWarning(viewers: readonly ViewerResult[]): string | undefined {
  let bad = 0;
  let frames = 0;
  for (const v of viewers) {
    bad += v.rtp?.implausibleDelays ?? 0;
    frames += v.rtp?.frames ?? 0;
  }
  if (bad === 0) return undefined;
  return `${bad} of ${frames} frames carried send stamps more than a minute off: something on the path rewrote RTP timestamps; delay figures cover the other frames only`;
}
