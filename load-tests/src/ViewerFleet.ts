import { fileURLToPath } from 'node:url';
import { forkChannel, reap, spawnJsonLines, waitForMessage, type ChildChannel } from './childChannel.js';
import type { GeneratorSeries, ViewerResult } from './LoadTestTypes.js';
import { LogHistogram } from './LogHistogram.js';
import { split } from './ramp.js';
import type { ParentMessage, SinkTotals, WorkerConfig, WorkerFinal, WorkerMessage, WorkerTick } from './workerMessages.js';

export interface ViewerFleetOptions {
  url: string;
  streamId: string;
  viewers: number;
  processes: number;
  rampPerSec: number;
  /** The whole test, ms: no join starts after it. */
  durationMs: number;
  stamped: boolean;
  freezeGapMs: number;
  joinTimeoutMs: number;
  /** Joins in flight per process. Default 32. */
  maxInFlightPerProcess?: number;
  /** Sink viewers (the Go load sink) instead of werift ones. */
  sink?: SinkLaunch;
  /**
   * werift fleets: one viewer per namespace of `netns` (each behind a bandwidth cap of its own),
   * each in a process of its own there, reaching the deployment at `url`; taken from `viewers`.
   * Marked `capped` in the results.
   */
  capped?: { netns: readonly string[]; url: string };
  /** werift fleets: what every viewer watches with (Watch's quality), and whether it offers transport-cc. */
  werift?: Pick<WorkerConfig, 'quality' | 'twcc'>;
}

/** How to run sink processes (see load-tests/sink). */
export interface SinkLaunch {
  /** The built binary (ensureSink()). */
  bin: string;
  /** taskset core list for the sink processes, e.g. "1". Default: not pinned. */
  cores?: string;
  /** Extra sinkConfig fields (ping period, TWCC, SRTP profiles, poll interval, server kind). */
  config?: Pick<WorkerConfig, 'server' | 'pingMs' | 'twcc' | 'decryptEvery' | 'srtpProfiles' | 'pollMs' | 'faults'>;
}

/** Cumulative figures of a sink fleet (totals()): windows are differences of two calls. */
export interface FleetTotals {
  /** Viewers the processes were asked for so far (start + add). */
  target: number;
  started: number;
  joining: number;
  connected: number;
  failed: number;
  /** Joined, then dropped by the server. */
  lostViewers: number;
  /** Sum of the processes' latest cumulative sink totals (SinkTotals); null before the first ticks. */
  sink: Omit<SinkTotals, 'joinMs' | 'dtlsMs'> & { joinMs: LogHistogram; dtlsMs: LogHistogram };
  /** Viewers that received at least one packet in each process's last tick interval. */
  receiving: number;
  /** CPU the viewer processes used since they started, µs (user + system). */
  cpuUs: number;
  rssBytes: number;
  /** Processes that have exited (their figures stay at their last tick). */
  exited: number;
}

/** What the fleet saw since the previous sample(). */
export interface FleetSample {
  started: number;
  joining: number;
  connected: number;
  failed: number;
  joined: number;
  joins: number;
  rxKbps: number;
  expected: number;
  lost: number;
  fps: number | null;
  delay: LogHistogram;
}

export interface FleetResult {
  viewers: ViewerResult[];
  delay: LogHistogram;
  generator: GeneratorSeries[];
  warnings: string[];
}

interface Child {
  index: number;
  proc: ChildChannel;
  config: WorkerConfig;
  last: WorkerTick | undefined;
  /** Ticks received since the last sample(). */
  pending: WorkerTick[];
  /** Rates from the last window with a tick: used when a window got none (timer phase drift). */
  lastRate: { bytesPerMs: number; framesPerViewerSec: number | null };
  final: WorkerFinal | undefined;
  series: GeneratorSeries;
}

// A busy machine starting many viewer processes at once (capped viewers: one each) may take a while.
const READY_TIMEOUT_MS = 60_000;
const FINAL_TIMEOUT_MS = 20_000;

/**
 * The simulated viewers, spread over child processes (viewerProcess.ts with werift, or the Go
 * sink), each joining its share at its share of the ramp rate. The parent only aggregates
 * what they report.
 *
 * (Over 350 lines: forking, the ramp, and adding up what the processes report all work on the
 * same list of children; what each viewer does is in viewerProcess.ts and the sinks.)
 */
export class ViewerFleet {
  readonly #options: ViewerFleetOptions;
  readonly #children: Child[] = [];
  #startedAt = 0;
  #lastJoined = 0;
  #stopped = false;
  #target = 0;
  #reportId = 0;

  constructor(options: ViewerFleetOptions) {
    this.#options = options;
  }

  /** Fork the processes and start the ramp; resolves once every process has started. */
  async start(): Promise<void> {
    const o = this.#options;
    this.#startedAt = Date.now();
    this.#target = o.viewers;
    // A sink fleet may start empty and grow by add() (the capacity benchmark's steps).
    if (o.viewers <= 0 && !o.sink) return;
    const cappedNs = !o.sink && o.capped ? o.capped.netns.slice(0, o.viewers) : [];
    const free = o.viewers - cappedNs.length;
    // Sink processes start even when empty: the capacity benchmark's steps add() their viewers.
    const counts = o.sink ? split(free, o.processes) : free > 0 ? split(free, Math.min(o.processes, free)) : [];
    // The capped viewers last, one process each inside its own namespace.
    const freeProcesses = counts.length;
    for (let i = 0; i < cappedNs.length; i++) counts.push(1);
    const script = fileURLToPath(new URL('./viewerProcess.js', import.meta.url));
    let first = 0;
    await Promise.all(
      counts.map(async (count, index) => {
        const netns = index >= freeProcesses ? cappedNs[index - freeProcesses] : undefined;
        const capped = netns !== undefined;
        const config: WorkerConfig = {
          process: index,
          url: capped ? o.capped!.url : o.url,
          ...(capped ? { capped: true } : {}),
          ...(!o.sink && o.werift ? o.werift : {}),
          streamId: o.streamId,
          // Sink processes number the viewers add() brings after their first ones.
          firstIndex: o.sink ? index * 1_000_000 + first : first,
          count,
          ratePerSec: (o.rampPerSec * count) / Math.max(1, o.viewers),
          maxInFlight: o.maxInFlightPerProcess ?? 32,
          rampDeadlineMs: o.durationMs,
          hardDeadlineMs: o.durationMs + 60_000,
          stamped: o.stamped,
          freezeGapMs: o.freezeGapMs,
          joinTimeoutMs: o.joinTimeoutMs,
        };
        first += count;
        const proc = o.sink
          ? spawnJsonLines(o.sink.bin, [], o.sink.cores !== undefined ? { cores: o.sink.cores } : {})
          : forkChannel(script, netns !== undefined ? { netns } : {});
        if (o.sink?.config) Object.assign(config, o.sink.config);
        const child: Child = {
          index,
          proc,
          config,
          last: undefined,
          pending: [],
          lastRate: { bytesPerMs: 0, framesPerViewerSec: null },
          final: undefined,
          series: { process: index, pid: proc.pid, viewers: count, samples: [] },
        };
        this.#children.push(child);
        proc.onMessage((m) => this.#onMessage(child, m));
        await waitForMessage(proc, (m) => m.type === 'ready', READY_TIMEOUT_MS, `${o.sink ? 'sink' : 'viewer'} process did not start`);
        this.#send(child, { type: 'start', config });
      }),
    );
    this.#children.sort((a, b) => a.index - b.index);
  }

  /**
   * Sink fleets only: `count` more viewers, spread over the processes, joining at `ratePerSec`
   * all processes together.
   */
  add(count: number, ratePerSec: number): void {
    if (!this.#options.sink) throw new TypeError('add() needs a sink fleet');
    if (count <= 0 || this.#stopped) return;
    const live = this.#children.filter((c) => !c.proc.exited);
    if (live.length === 0) return;
    const counts = split(count, live.length);
    live.forEach((c, i) => {
      if (counts[i]! > 0) this.#send(c, { type: 'add', count: counts[i]!, ratePerSec: (ratePerSec * counts[i]!) / count });
    });
    this.#target += count;
  }

  /** Sink fleets: the latest cumulative figures of all processes together. */
  totals(): FleetTotals {
    const out: FleetTotals = {
      target: this.#target,
      started: 0,
      joining: 0,
      connected: 0,
      failed: 0,
      lostViewers: 0,
      receiving: 0,
      sink: { lostViewers: 0, stalled: 0, packets: 0, expected: 0, lost: 0, bytes: 0, decryptOk: 0, decryptFail: 0, nacked: 0, rtx: 0, socketDrops: 0, missedPings: 0, joinMs: new LogHistogram(), dtlsMs: new LogHistogram() },
      cpuUs: 0,
      rssBytes: 0,
      exited: 0,
    };
    for (const c of this.#children) {
      if (c.proc.exited) out.exited++;
      const t = c.last;
      if (!t) continue;
      out.started += t.started;
      out.joining += t.joining;
      out.connected += t.connected;
      out.failed += t.failedTotal;
      out.receiving += t.receiving;
      out.cpuUs += t.cpuUserUs + t.cpuSystemUs;
      out.rssBytes += t.rssBytes;
      const s = t.sink;
      if (!s) continue;
      out.lostViewers += s.lostViewers;
      for (const k of ['lostViewers', 'stalled', 'packets', 'expected', 'lost', 'bytes', 'decryptOk', 'decryptFail', 'nacked', 'rtx', 'socketDrops', 'missedPings'] as const) out.sink[k] += s[k];
      out.sink.joinMs.merge(s.joinMs);
      out.sink.dtlsMs.merge(s.dtlsMs);
    }
    return out;
  }

  /**
   * Sink fleets: every live process reports now; resolves with the totals once each has (or
   * after timeoutMs with what came). Windows between two snapshots are exact, whatever the
   * tick period.
   */
  async snapshot(timeoutMs = 5000): Promise<FleetTotals> {
    const live = this.#children.filter((c) => !c.proc.exited);
    const id = ++this.#reportId;
    await Promise.all(
      live.map((c) => {
        const got = waitForMessage(c.proc, (m) => m.type === 'tick' && m.tick.reportId === id, timeoutMs, 'no tick').catch(() => undefined);
        this.#send(c, { type: 'report', id });
        return got;
      }),
    );
    return this.totals();
  }

  /** Process ids of the viewer processes (for CPU accounting from /proc). */
  get pids(): number[] {
    return this.#children.map((c) => c.proc.pid).filter((p) => p > 0);
  }

  /** Aggregate what the processes reported since the previous call. */
  sample(): FleetSample {
    const delay = new LogHistogram();
    const out: FleetSample = {
      started: 0,
      joining: 0,
      connected: 0,
      failed: 0,
      joined: 0,
      joins: 0,
      rxKbps: 0,
      expected: 0,
      lost: 0,
      fps: null,
      delay,
    };
    let fpsWeighted = 0;
    let fpsViewers = 0;
    for (const c of this.#children) {
      const ticks = c.pending.splice(0);
      if (ticks.length) {
        let bytes = 0;
        let ms = 0;
        let frames = 0;
        let viewerSecs = 0;
        for (const t of ticks) {
          bytes += t.bytes;
          ms += t.intervalMs;
          frames += t.frames;
          viewerSecs += (t.receiving * t.intervalMs) / 1000;
          out.expected += t.expected;
          out.lost += t.lost;
          delay.merge(t.delay);
        }
        c.lastRate = { bytesPerMs: bytes / ms, framesPerViewerSec: viewerSecs > 0 ? frames / viewerSecs : null };
      }
      // A process that died reports nothing more; its last figures would go stale.
      if (c.proc.exited) continue;
      out.rxKbps += c.lastRate.bytesPerMs * 8;
      if (c.lastRate.framesPerViewerSec !== null && c.last) {
        fpsWeighted += c.lastRate.framesPerViewerSec * c.last.connected;
        fpsViewers += c.last.connected;
      }
      if (c.last) {
        out.started += c.last.started;
        out.joining += c.last.joining;
        out.connected += c.last.connected;
        out.failed += c.last.failedTotal;
        out.joined += c.last.joinedTotal;
      }
    }
    out.fps = fpsViewers > 0 ? fpsWeighted / fpsViewers : null;
    out.joins = Math.max(0, out.joined - this.#lastJoined);
    this.#lastJoined = out.joined;
    return out;
  }

  /** Stop every viewer and collect the per-viewer results; kills processes that do not answer. */
  async stop(): Promise<FleetResult> {
    const warnings: string[] = [];
    if (!this.#stopped) {
      this.#stopped = true;
      await Promise.all(
        this.#children.map(async (c) => {
          if (c.final || c.proc.exited) return;
          this.#send(c, { type: 'stop' });
          await waitForMessage(c.proc, (m) => m.type === 'final', FINAL_TIMEOUT_MS, 'no results').catch(() => {});
        }),
      );
      for (const c of this.#children) {
        if (!c.final) {
          warnings.push(
            `viewer process ${c.index} (${c.config.count} viewers) gave no results${c.proc.exited ? ` (exited with ${c.proc.exitStatus})` : ''}; stderr: ${c.proc.stderr.slice(-3).join(' | ') || '(none)'}`,
          );
        }
      }
      await Promise.all(this.#children.map((c) => reap(c.proc)));
    }
    const viewers: ViewerResult[] = [];
    const delay = new LogHistogram();
    for (const c of this.#children) {
      if (c.final) {
        viewers.push(...c.final.viewers);
        delay.merge(c.final.delay);
      }
      if (c.last?.uncaughtErrors) {
        warnings.push(`viewer process ${c.index}: ${c.last.uncaughtErrors} uncaught errors, last: ${c.last.lastUncaught ?? '?'}`);
      }
    }
    viewers.sort((a, b) => a.index - b.index);
    return { viewers, delay, generator: this.#children.map((c) => c.series), warnings };
  }

  #onMessage(c: Child, m: WorkerMessage): void {
    if (m.type === 'tick') {
      const prev = c.last;
      c.last = m.tick;
      c.pending.push(m.tick);
      const cpuUs = m.tick.cpuUserUs + m.tick.cpuSystemUs - (prev ? prev.cpuUserUs + prev.cpuSystemUs : 0);
      c.series.samples.push({
        t: (Date.now() - this.#startedAt) / 1000,
        cpuPct: (cpuUs / 1000 / m.tick.intervalMs) * 100,
        rssBytes: m.tick.rssBytes,
      });
    } else if (m.type === 'final') {
      c.final = m.final;
    } else if (m.type === 'ready') {
      c.series.pid = m.pid;
    }
  }

  #send(c: Child, m: ParentMessage): void {
    c.proc.send(m);
  }
}
