/** Small, hand-made reports for the pure report/summary tests. */
import type { LoadTestReport, NodeSeries, TimelinePoint, ViewerResult } from '../src/LoadTestTypes.js';
import { LogHistogram } from '../src/LogHistogram.js';
import type { RtpReceiveSummary } from '../src/RtpReceiveStats.js';
import { summarizeRun } from '../src/aggregate.js';

export function rtp(o: Partial<RtpReceiveSummary> = {}): RtpReceiveSummary {
  return {
    packets: 1000,
    bytes: 1_000_000,
    duplicates: 0,
    expected: 1000,
    lost: 0,
    lossFraction: 0,
    firstPacketAt: 1_000_500,
    firstFrameAt: 1_000_600,
    lastPacketAt: 1_020_500,
    frames: 600,
    bitrateKbps: 400,
    jitterMs: 2,
    jitterMaxMs: 3,
    freezes: 0,
    freezeTotalMs: 0,
    longestFreezeMs: 0,
    delay: null,
    implausibleDelays: 0,
    ...o,
  };
}

export function viewer(index: number, o: Partial<ViewerResult> = {}): ViewerResult {
  return {
    index,
    process: 0,
    nodeId: 'origin-1',
    ok: true,
    startedAt: 1_000_000,
    joinMs: 100 + index,
    firstPacketMs: 500,
    firstFrameMs: 600,
    reconnects: 0,
    nodeChanges: 0,
    rtp: rtp(),
    ...o,
  };
}

export function point(t: number, o: Partial<TimelinePoint> = {}): TimelinePoint {
  return {
    t,
    target: 10,
    started: 10,
    connected: 10,
    joining: 0,
    failed: 0,
    joins: t === 1 ? 10 : 0,
    rxKbps: 4000,
    lossPct: 0,
    delayP50Ms: 3,
    delayP95Ms: 8,
    fps: 30,
    hostCpuPct: 40,
    ...o,
  };
}

export function node(id: string, kind: string, o: Partial<NodeSeries> = {}): NodeSeries {
  return {
    id,
    kind,
    url: `http://${id}:8080`,
    scrapeErrors: 0,
    samples: [1, 2, 3].map((t) => ({ t, cpuCores: 0.2, rssBytes: 100e6, consumers: 10, viewers: 10, bitrateOutKbps: 4000 })),
    ...o,
  };
}

export function makeReport(o: Partial<LoadTestReport> = {}): LoadTestReport {
  const delay = new LogHistogram();
  for (let i = 1; i <= 100; i++) delay.add(i / 10);
  const viewers = o.viewers ?? Array.from({ length: 10 }, (_, i) => viewer(i));
  const timeline = o.timeline ?? [1, 2, 3].map((t) => point(t));
  const nodes = o.nodes ?? [node('origin-1', 'origin')];
  const generator = o.generator ?? [{ process: 0, pid: 123, viewers: 10, samples: [{ t: 1, cpuPct: 20, rssBytes: 80e6 }] }];
  const decoders = o.decoders ?? [];
  return {
    tool: 'cascade-load-test',
    version: 1,
    options: {
      url: 'http://127.0.0.1:8080',
      viewers: viewers.length,
      client: 'werift',
      sinkTwcc: true,
      durationSec: 3,
      rampPerSec: 20,
      broadcast: true,
      broadcaster: 'ffmpeg',
      decoders: decoders.length,
      capped: 0,
      cappedDecoders: 0,
      capKbit: 500,
      camera: 'fake',
      processes: 1,
      freezeGapMs: 500,
      joinTimeoutMs: 15000,
      progress: false,
    },
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:00:03.000Z',
    streamId: 'stream_1',
    broadcaster: { kind: 'ffmpeg', stamped: true },
    host: { cpus: 2, platform: 'linux', node: 'v20' },
    endReason: 'duration',
    summary: summarizeRun({ target: viewers.length, timeline, viewers, decoders, nodes, generator, delay: delay.toJSON() }),
    timeline,
    nodes,
    generator,
    viewers,
    decoders,
    delayHistogram: delay.toJSON(),
    warnings: [],
    ...o,
  };
}
