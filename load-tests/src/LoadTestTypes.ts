/** Shapes of the load-test report (report.json). Times are wall-clock ms unless named otherwise. */
import type { LayersSummary, ViewerLayerTimes } from './layerTypes.js';
import type { LogHistogramJSON } from './LogHistogram.js';
import type { LoadTestOptions } from './options.js';
import type { RtpReceiveSummary } from './RtpReceiveStats.js';
import type { Summary } from './stats.js';

export interface ViewerResult {
  index: number;
  /** Which child process ran it. */
  process: number;
  /** Node that served it last (origin or relay). */
  nodeId: string | null;
  ok: boolean;
  error?: { code: string; message: string };
  /** When watch() was called. */
  startedAt: number;
  /** watch() call → resolved, ms. */
  joinMs: number | null;
  /** watch() call → first RTP packet / first completed frame (marker bit), ms. */
  firstPacketMs: number | null;
  firstFrameMs: number | null;
  reconnects: number;
  nodeChanges: number;
  /** Video RTP accounting; null if no consumer ever came. */
  rtp: RtpReceiveSummary | null;
  /** Behind the test network's bandwidth cap (--capped). */
  capped?: boolean;
  /** The simulcast layer it received over time (werift viewers). */
  layers?: ViewerLayerTimes;
  /** Sink viewers only (`--client sink`): the WebRTC layer underneath. */
  sink?: SinkViewerDetail;
}

/** What a sink viewer reports beyond ViewerResult (load-tests/sink/viewer.go sinkDetail). */
export interface SinkViewerDetail {
  state: string;
  /** Join start → ICE connected, and the DTLS handshake after it, ms. */
  iceMs: number | null;
  dtlsMs: number | null;
  srtpProfile: string;
  redirects: number;
  audio: { packets: number; expected: number; lost: number; jitterMs: number } | null;
  decryptOk: number;
  decryptFail: number;
  rtx: number;
  nacked: number;
  repaired: number;
  nackPackets: number;
  twccPackets: number;
  rtcpIn: number;
  rtcpOut: number;
  unknownPackets: number;
  /** Datagrams the kernel dropped at this viewer's full socket (the sink fell behind). */
  socketDrops: number;
  missedPings: number;
  drainNotices: number;
}

export interface TimelinePoint {
  /** Seconds since the test started. */
  t: number;
  /** Viewers the ramp has asked for so far. */
  target: number;
  started: number;
  connected: number;
  joining: number;
  failed: number;
  /** Successful joins in this second. */
  joins: number;
  /** Media received by all simulated viewers, kbit/s. */
  rxKbps: number;
  /** Packets lost in this second over packets expected, %. */
  lossPct: number | null;
  delayP50Ms: number | null;
  delayP95Ms: number | null;
  /** Frames per second per receiving viewer. */
  fps: number | null;
  /** Whole machine (load generator, broadcaster, and the server if local), % of all cores. */
  hostCpuPct: number | null;
}

export interface NodeSample {
  t: number;
  cpuCores: number | null;
  rssBytes: number | null;
  consumers: number | null;
  /** Viewer sessions the node reports (all streams). */
  viewers: number | null;
  /** Derived from cascade_media_bytes_sent_total between two scrapes. */
  bitrateOutKbps: number | null;
}

export interface NodeSeries {
  id: string;
  kind: string;
  url: string;
  samples: NodeSample[];
  scrapeErrors: number;
}

export interface GeneratorSeries {
  process: number;
  pid: number;
  viewers: number;
  /** CPU of that process, % of one core; resident memory. */
  samples: { t: number; cpuPct: number; rssBytes: number }[];
}

export interface DecoderSample {
  t: number;
  framesDecoded: number;
  framesDropped: number;
  framesPerSecond: number | null;
  freezeCount: number;
  totalFreezesDurationSec: number;
  frameWidth: number | null;
  frameHeight: number | null;
  packetsReceived: number;
  packetsLost: number;
  jitterMs: number | null;
  bytesReceived: number;
}

export interface DecoderResult {
  index: number;
  ok: boolean;
  /** Behind the test network's bandwidth cap (--capped-decoders). */
  capped?: boolean;
  error?: string;
  nodeId: string | null;
  /** page.goto() → window.cascadeWatch set, ms. */
  joinMs: number | null;
  /** page.goto() → first frame painted (requestVideoFrameCallback), ms. */
  firstFrameMs: number | null;
  samples: DecoderSample[];
  /** Stamp → frame presented, per painted frame (stamped streams only), ms. */
  renderDelay: Summary | null;
  renderDelayHistogram: LogHistogramJSON | null;
}

export interface NodeSummary {
  id: string;
  kind: string;
  viewersMax: number | null;
  consumersMax: number | null;
  cpuCores: Summary | null;
  /** CPU per viewer while at least one viewer was on the node, % of one core. */
  cpuPerViewerPct: Summary | null;
  rssMaxBytes: number | null;
  bitrateOutKbps: Summary | null;
  /** Of the simulated viewers this node served: */
  servedViewers: number;
  rxKbpsPerViewer: Summary | null;
  lossPct: number | null;
}

export interface LoadTestSummary {
  viewers: { target: number; started: number; joined: number; failed: number; failuresByCode: Record<string, number> };
  joinMs: Summary | null;
  firstPacketMs: Summary | null;
  firstFrameMs: Summary | null;
  bitrateKbps: Summary | null;
  /** Per-viewer loss, %. */
  lossPct: Summary | null;
  /** All packets lost / all expected, %. */
  lossPctOverall: number | null;
  jitterMs: Summary | null;
  freezesPerViewer: Summary | null;
  freezeMsPerViewer: Summary | null;
  /** Every stamped frame of every viewer. */
  delayMs: Summary | null;
  nodes: NodeSummary[];
  generator: {
    processes: number;
    viewersPerProcess: number[];
    cpuPctPerProcess: Summary | null;
    rssMaxBytes: number | null;
    /** Machine-wide CPU during the test, % of all cores. */
    hostCpuPct: Summary | null;
  };
  decoders: {
    count: number;
    ok: number;
    fps: Summary | null;
    freezeCount: number;
    frameWidth: number | null;
    renderDelayMs: Summary | null;
  };
  /** Layers received, freezes and loss, viewers behind the bandwidth cap apart from the others. */
  layers?: LayersSummary;
}

export interface LoadTestReport {
  tool: 'cascade-load-test';
  version: 1;
  options: LoadTestOptions;
  startedAt: string;
  endedAt: string;
  streamId: string;
  broadcaster: { kind: 'ffmpeg' | 'chromium' | 'external'; stamped: boolean; detail?: string };
  host: { cpus: number; platform: string; node: string };
  /** Why the test ended: 'duration', 'interrupted', 'stream ended', … */
  endReason: string;
  summary: LoadTestSummary;
  timeline: TimelinePoint[];
  nodes: NodeSeries[];
  generator: GeneratorSeries[];
  viewers: ViewerResult[];
  decoders: DecoderResult[];
  /** Merged delay histogram of all simulated viewers. */
  delayHistogram: LogHistogramJSON;
  /** Things the operator should know (scrape failures, broadcaster restarts, …). */
  warnings: string[];
}
