/**
 * Child process running a share of the simulated viewers (forked by ViewerFleet). A werift
 * viewer costs ~0.7–0.8 % of a core here (its SRTP and RTP parsing are plain JS), so one
 * process holds ~100 of them comfortably and large tests spread over several.
 * It only ever contacts the URL it is given (and the nodes the SDK is redirected to), and
 * exits by itself at its hard deadline or when the parent goes away.
 */
import * as werift from 'werift';
import WebSocket from 'ws';
import type { WatchOptions } from '@cascade/client-sdk';
import { wallClockMs } from './clock.js';
import { LogHistogram } from './LogHistogram.js';
import { dueJoins } from './ramp.js';
import { installWeriftGlobals } from '@cascade/clients';
import { WeriftViewer } from './WeriftViewer.js';
import type { ParentMessage, WorkerConfig, WorkerMessage, WorkerTick } from './workerMessages.js';

const RAMP_TICK_MS = 100;
const REPORT_TICK_MS = 1000;

let config: WorkerConfig | undefined;
const viewers: WeriftViewer[] = [];
const timers: ReturnType<typeof setInterval>[] = [];
let inFlight = 0;
let uncaught = 0;
let lastUncaught: string | undefined;
let finished = false;
let lastReportAt = Date.now();
/** CPU before the viewers started: loading werift is not the viewers' cost. */
let cpuBase: NodeJS.CpuUsage | undefined;

function send(msg: WorkerMessage, cb?: () => void): void {
  if (!process.connected) return cb?.();
  process.send!(msg, undefined, undefined, () => cb?.());
}

// werift and the SDK may throw from socket callbacks; one bad peer must not take the process's other viewers down.
process.on('uncaughtException', (err) => {
  uncaught++;
  lastUncaught = String(err?.stack ?? err).slice(0, 500);
});
process.on('unhandledRejection', (err) => {
  uncaught++;
  lastUncaught = String((err as Error)?.stack ?? err).slice(0, 500);
});

process.on('message', (msg: ParentMessage) => {
  if (msg.type === 'start' && !config) start(msg.config);
  else if (msg.type === 'stop') {
    if (!config) process.exit(0);
    finish();
  }
});
// The parent died or closed the channel: leave at once, nobody will read the results.
process.on('disconnect', () => {
  for (const v of viewers) v.stop();
  process.exit(0);
});

send({ type: 'ready', pid: process.pid });

function start(c: WorkerConfig): void {
  config = c;
  installWeriftGlobals({ twcc: c.twcc === true });
  cpuBase = process.cpuUsage();
  const t0 = Date.now();
  lastReportAt = t0;
  for (let i = 0; i < c.count; i++) {
    viewers.push(
      new WeriftViewer(
        {
          url: c.url,
          streamId: c.streamId,
          index: c.firstIndex + i,
          stamped: c.stamped,
          freezeGapMs: c.freezeGapMs,
          joinTimeoutMs: c.joinTimeoutMs,
          WebSocket: WebSocket as unknown as NonNullable<WatchOptions['WebSocket']>,
          MediaStream: werift.MediaStream as unknown as NonNullable<WatchOptions['MediaStream']>,
          ...(c.capped ? { capped: true } : {}),
          ...(c.quality ? { quality: c.quality } : {}),
        },
        { now: wallClockMs },
      ),
    );
  }
  let next = 0;
  const ramp = setInterval(() => {
    const elapsed = Date.now() - t0;
    if (finished || next >= viewers.length || elapsed > c.rampDeadlineMs) {
      clearInterval(ramp);
      return;
    }
    // Bounded by the ramp, by the in-flight cap and by the number of viewers.
    const due = dueJoins(elapsed, c.ratePerSec, viewers.length);
    while (next < due && inFlight < c.maxInFlight) {
      const v = viewers[next++]!;
      inFlight++;
      void v.join().finally(() => inFlight--);
    }
  }, RAMP_TICK_MS);
  timers.push(ramp);
  timers.push(setInterval(report, REPORT_TICK_MS));
  const hard = setTimeout(() => {
    finish();
    setTimeout(() => process.exit(0), 2000).unref();
  }, c.hardDeadlineMs);
  hard.unref();
}

function report(): void {
  if (!config || finished) return;
  const delay = new LogHistogram();
  const now = Date.now();
  const t: WorkerTick = {
    process: config.process,
    intervalMs: Math.max(1, now - lastReportAt),
    started: 0,
    joining: 0,
    connected: 0,
    failedTotal: 0,
    joinedTotal: 0,
    packets: 0,
    bytes: 0,
    expected: 0,
    lost: 0,
    frames: 0,
    receiving: 0,
    delay: delay.toJSON(),
    cpuUserUs: 0,
    cpuSystemUs: 0,
    rssBytes: process.memoryUsage.rss(),
    uncaughtErrors: uncaught,
    ...(lastUncaught ? { lastUncaught } : {}),
  };
  for (const v of viewers) {
    const s = v.state;
    if (s === 'idle') continue;
    t.started++;
    if (s === 'joining') t.joining++;
    else if (s === 'connected') t.connected++;
    else if (s === 'failed') t.failedTotal++;
    if (s === 'connected' || s === 'lost') t.joinedTotal++;
    const r = v.takeInterval(delay);
    t.packets += r.packets;
    t.bytes += r.bytes;
    t.expected += r.expected;
    t.lost += r.lost;
    t.frames += r.frames;
    if (r.packets > 0) t.receiving++;
  }
  t.delay = delay.toJSON();
  lastReportAt = now;
  const cpu = process.cpuUsage(cpuBase);
  t.cpuUserUs = cpu.user;
  t.cpuSystemUs = cpu.system;
  send({ type: 'tick', tick: t });
}

function finish(): void {
  if (finished || !config) return;
  report();
  finished = true;
  for (const t of timers) clearInterval(t);
  for (const v of viewers) v.stop();
  // From the per-viewer totals, so frames after the last tick count too.
  const delay = new LogHistogram();
  for (const v of viewers) delay.merge(v.delayHistogram);
  const results = viewers.map((v) => v.result(config!.process));
  send({ type: 'final', final: { process: config.process, viewers: results, delay: delay.toJSON() } }, () => {
    // Let the SDK's close messages leave before the sockets die with the process.
    setTimeout(() => process.exit(0), 300).unref();
  });
}
