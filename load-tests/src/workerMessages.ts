/** IPC between the load-test parent and its viewer processes (child_process.fork, JSON). */
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
}

export type ParentMessage = { type: 'start'; config: WorkerConfig } | { type: 'stop' };

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
