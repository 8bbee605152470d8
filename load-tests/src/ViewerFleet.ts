import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { GeneratorSeries, ViewerResult } from './LoadTestTypes.js';
import { LogHistogram } from './LogHistogram.js';
import { split } from './ramp.js';
import type { ParentMessage, WorkerConfig, WorkerFinal, WorkerMessage, WorkerTick } from './workerMessages.js';

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
  proc: ChildProcess;
  config: WorkerConfig;
  last: WorkerTick | undefined;
  /** Ticks received since the last sample(). */
  pending: WorkerTick[];
  /** Rates from the last window with a tick: used when a window got none (timer phase drift). */
  lastRate: { bytesPerMs: number; framesPerViewerSec: number | null };
  final: WorkerFinal | undefined;
  series: GeneratorSeries;
  stderr: string[];
  exited: boolean;
}

const READY_TIMEOUT_MS = 20_000;
const FINAL_TIMEOUT_MS = 20_000;
const STDERR_LINES = 20;

/**
 * The simulated viewers, spread over child processes (viewerProcess.ts), each joining its
 * share at its share of the ramp rate. The parent only aggregates what they report.
 */
export class ViewerFleet {
  readonly #options: ViewerFleetOptions;
  readonly #children: Child[] = [];
  #startedAt = 0;
  #lastJoined = 0;
  #stopped = false;

  constructor(options: ViewerFleetOptions) {
    this.#options = options;
  }

  /** Fork the processes and start the ramp; resolves once every process has started. */
  async start(): Promise<void> {
    const o = this.#options;
    this.#startedAt = Date.now();
    if (o.viewers <= 0) return;
    const counts = split(o.viewers, Math.min(o.processes, o.viewers));
    const script = fileURLToPath(new URL('./viewerProcess.js', import.meta.url));
    let first = 0;
    await Promise.all(
      counts.map(async (count, index) => {
        const config: WorkerConfig = {
          process: index,
          url: o.url,
          streamId: o.streamId,
          firstIndex: first,
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
        const proc = fork(script, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
        const child: Child = {
          index,
          proc,
          config,
          last: undefined,
          pending: [],
          lastRate: { bytesPerMs: 0, framesPerViewerSec: null },
          final: undefined,
          series: { process: index, pid: proc.pid ?? 0, viewers: count, samples: [] },
          stderr: [],
          exited: false,
        };
        this.#children.push(child);
        proc.stderr?.setEncoding('utf8');
        proc.stderr?.on('data', (chunk: string) => {
          for (const line of chunk.split('\n')) if (line.trim()) child.stderr.push(line.slice(0, 300));
          child.stderr.splice(0, Math.max(0, child.stderr.length - STDERR_LINES));
        });
        proc.on('exit', () => (child.exited = true));
        proc.on('message', (m: WorkerMessage) => this.#onMessage(child, m));
        await waitFor(proc, (m) => m.type === 'ready', READY_TIMEOUT_MS, 'viewer process did not start');
        this.#send(child, { type: 'start', config });
      }),
    );
    this.#children.sort((a, b) => a.index - b.index);
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
      if (c.exited) continue;
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
          if (c.final || c.exited) return;
          this.#send(c, { type: 'stop' });
          await waitFor(c.proc, (m) => m.type === 'final', FINAL_TIMEOUT_MS, 'no results').catch(() => {});
        }),
      );
      for (const c of this.#children) {
        if (!c.final) {
          warnings.push(
            `viewer process ${c.index} (${c.config.count} viewers) gave no results${c.exited ? ` (exited with ${c.proc.exitCode ?? c.proc.signalCode})` : ''}; stderr: ${c.stderr.slice(-3).join(' | ') || '(none)'}`,
          );
        }
      }
      await Promise.all(this.#children.map((c) => reap(c)));
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
    if (c.proc.connected) c.proc.send(m);
  }
}

function waitFor(proc: ChildProcess, match: (m: WorkerMessage) => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      proc.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (m: WorkerMessage) => {
      if (match(m)) done();
    };
    const onExit = (code: number | null) => done(new Error(`${what} (exited with ${code})`));
    const timer = setTimeout(() => done(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
    proc.on('message', onMessage);
    proc.on('exit', onExit);
  });
}

/** Wait briefly for a process to exit by itself, then kill it (only our own children). */
async function reap(c: Child): Promise<void> {
  if (c.exited) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      c.proc.kill('SIGKILL');
      resolve();
    }, 5000);
    c.proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
