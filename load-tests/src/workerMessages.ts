/**
 * Between the load-test parent and its viewer processes: werift viewers (child_process.fork,
 * JSON over IPC) or the Go sink (load-tests/sink, the same messages as JSON lines on
 * stdin/stdout).
 */
import type { ViewerResult } from './LoadTestTypes.js';
import type { LogHistogramJSON } from './LogHistogram.js';

export interface WorkerConfig {
  /** Index of this process, for the report. */
  process: number;
  url: string;
  streamId: string;
  /** Global index of this process's first viewer. */
  firstIndex: number;
  count: number;
  /** This process's share of the ramp, joins/s. */
  ratePerSec: number;
  /** Joins in flight at once, at most. */
  maxInFlight: number;
  /** No viewer starts after this many ms from start (the test is ending). */
  rampDeadlineMs: number;
  /** The process exits by itself this long after start, whatever the parent does, ms. */
  hardDeadlineMs: number;
  stamped: boolean;
  freezeGapMs: number;
  joinTimeoutMs: number;
  /** This process runs behind the test network's bandwidth cap (werift processes; marked in the results). */
  capped?: boolean;
  /** werift processes: the quality every viewer watches with (default 'auto'). */
  quality?: 'auto' | 'high' | 'medium' | 'low' | 'audio';
  /** Sink processes only (load-tests/sink/main.go sinkConfig); ignored by werift processes. */
  server?: 'cascade' | 'janus';
  /** session.ping period, ms (0: none). Sink default 1000. */
  pingMs?: number;
  /** Negotiate transport-wide congestion control, as browsers do. Sink default true; werift default false (it then offers REMB, which it never sends). */
  twcc?: boolean;
  /** Decrypt one packet in this many per stream. Sink default 50. */
  decryptEvery?: number;
  /** SRTP profiles offered, e.g. ['AES_CM_128_HMAC_SHA1_80']. */
  srtpProfiles?: string[];
  /** Read the sockets every pollMs (0: as packets come). Sink default 20. */
  pollMs?: number;
  /** Fault injection for tests: the sink loses every DTLS record from the server. */
  faults?: { dropDtls?: boolean };
}

export type ParentMessage =
  | { type: 'start'; config: WorkerConfig }
  | { type: 'stop' }
  /** Sink processes only: `count` more viewers, joining at `ratePerSec` (the capacity benchmark's steps). */
  | { type: 'add'; count: number; ratePerSec: number }
  /** Sink processes only: send a tick now (its interval ends here), with `reportId: id`. */
  | { type: 'report'; id: number };

/** Cumulative figures a sink adds to its ticks (windows of any length are differences of two ticks). */
export interface SinkTotals {
  /** Viewers that joined and were then dropped by the server. */
  lostViewers: number;
  /** Connected viewers that have received nothing for over a second (2 s after joining). */
  stalled: number;
  /** RTP packets, audio and video, since the start: received, expected, lost (after NACK repair). */
  packets: number;
  expected: number;
  lost: number;
  bytes: number;
  /** Sampled SRTP decryptions that passed and failed authentication. */
  decryptOk: number;
  decryptFail: number;
  /** Sequence numbers NACKed (retries included) and retransmissions received. */
  nacked: number;
  rtx: number;
  /** Datagrams the kernel dropped at the viewers' full sockets: the sink fell behind (not the server's loss). */
  socketDrops: number;
  /** session.ping (Cascade) or keepalive (Janus) left unanswered. */
  missedPings: number;
  /** Completed joins: request → DTLS connected, and the DTLS handshake alone, ms. */
  joinMs: LogHistogramJSON;
  dtlsMs: LogHistogramJSON;
}

/** Sent once per second. Counters named *Total are cumulative; the rest cover the last interval. */
export interface WorkerTick {
  process: number;
  /** Length of the interval this tick covers, ms. */
  intervalMs: number;
  started: number;
  joining: number;
  connected: number;
  failedTotal: number;
  joinedTotal: number;
  packets: number;
  bytes: number;
  expected: number;
  lost: number;
  frames: number;
  /** Viewers that received at least one packet in the interval. */
  receiving: number;
  delay: LogHistogramJSON;
  /** CPU used since the viewers started (cumulative), µs. */
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
  /** Exceptions nobody caught (werift/SDK internals), cumulative; the process keeps going. */
  uncaughtErrors: number;
  lastUncaught?: string;
  /** Sink processes only. */
  sink?: SinkTotals;
  /** Sink processes only: the report request this tick answers (absent on periodic ticks). */
  reportId?: number;
}

export interface WorkerFinal {
  process: number;
  viewers: ViewerResult[];
  delay: LogHistogramJSON;
}

export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'tick'; tick: WorkerTick }
  | { type: 'final'; final: WorkerFinal }
  | { type: 'fatal'; message: string };
