/**
 * The failover benchmarks' measured viewers: werift viewers, each in a process of its own
 * (failoverViewer.ts), and decoding browser pages; and the timing of their frames around a
 * failure (the next key frame, the next node, the longest gap).
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { FailoverViewerMessage } from './failoverViewer.js';

/**
 * A decoding browser viewer on /watch/<id> that timestamps every frame the <video> element
 * presents (requestVideoFrameCallback): what a person would see, freezes included.
 */
export async function browserViewer(browser: Browser, url: string, streamId: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${url}/watch/${streamId}`);
  await page.waitForFunction(() => (window as unknown as { cascadeDemo: { state: string } }).cascadeDemo?.state === 'live', null, { timeout: 20_000 });
  await page.evaluate(() => {
    const w = window as unknown as { __frames: number[] };
    w.__frames = [];
    type Md = { rtpTimestamp?: number };
    const video = document.getElementById('video') as HTMLVideoElement & { requestVideoFrameCallback(cb: (now: number, md: Md) => void): void };
    // Only a frame not shown before counts (another RTP timestamp): a callback for the frame
    // already shown (the element calling back as the Watch swaps tracks) would split a freeze in
    // two. Nor does one with no RTP timestamp: no frame of the stream. Counted until stop 33, such
    // a callback as the Watch swapped tracks (traced: 330 to 490 ms after the freeze at every
    // Chromium viewer of a relay whose parent froze) cut their freezes in two in the inner-failover
    // benchmark, which then showed them back 300 ms before the werift viewers beside them.
    let last: number | undefined;
    const tick = (_now: number, md: Md) => {
      if (md.rtpTimestamp !== undefined && md.rtpTimestamp !== last) w.__frames.push(Date.now());
      if (md.rtpTimestamp !== undefined) last = md.rtpTimestamp;
      if (w.__frames.length > 5000) w.__frames.splice(0, 2500);
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  });
  return page;
}

export const presentedFrames = (page: Page) => page.evaluate(() => [...(window as unknown as { __frames: number[] }).__frames]);
export const pageNode = (page: Page) => page.evaluate(() => (window as unknown as { cascadeDemo: { nodeId?: string } }).cascadeDemo.nodeId ?? '');

/** A measured viewer: werift in a process of its own (see failoverViewer.ts). */
export interface BenchViewer {
  nodeId: string;
  /** When its watch() started, and when its first complete key frame arrived. */
  startedAt: number;
  firstKeyframeAt: number | undefined;
  videoTracks: number;
  onFrame?: (at: number, key: boolean, track: number) => void;
  onNode?: (nodeId: string, at: number) => void;
  /** What its SDK said so far (nodes and why, reconnect causes, warnings), for a failover that never ended. */
  report(): Promise<string[]>;
  /** The longest its process's event loop was held up since the last call (ms; -1: no answer). */
  lag(): Promise<number>;
  stop(): void;
}

const VIEWER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'failoverViewer.js');

/** Starts a measured viewer in a process of its own; resolves once it watches (its node known). */
export function spawnViewer(url: string, streamId: string): Promise<BenchViewer> {
  const proc = fork(VIEWER_SCRIPT, [url, streamId], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
  const v: BenchViewer = {
    nodeId: '',
    startedAt: Date.now(),
    firstKeyframeAt: undefined,
    videoTracks: 0,
    report: () =>
      new Promise((resolve) => {
        if (!proc.connected) return resolve(['(viewer process gone)']);
        const timer = setTimeout(() => resolve(['(no report within 2 s)']), 2000);
        reportWaiters.push((lines) => {
          clearTimeout(timer);
          resolve(lines);
        });
        proc.send('report');
      }),
    lag: () =>
      new Promise((resolve) => {
        if (!proc.connected) return resolve(-1);
        const timer = setTimeout(() => resolve(-1), 2000);
        lagWaiters.push((ms) => {
          clearTimeout(timer);
          resolve(ms);
        });
        proc.send('lag');
      }),
    stop: () => {
      if (proc.connected) proc.send('stop');
      setTimeout(() => proc.kill('SIGKILL'), 2000).unref();
    },
  };
  const reportWaiters: ((lines: string[]) => void)[] = [];
  const lagWaiters: ((ms: number) => void)[] = [];
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail('no answer within 30 s'), 30_000);
    const fail = (why: string) => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`failover viewer: ${why}\n${stderr}`));
    };
    proc.once('exit', (code) => fail(`exited (${code})`));
    proc.on('message', (m: FailoverViewerMessage) => {
      if (m.t === 'start') v.startedAt = m.at;
      else if (m.t === 'ready') {
        v.nodeId = m.nodeId;
        clearTimeout(timer);
        proc.removeAllListeners('exit');
        resolve(v);
      } else if (m.t === 'frame') {
        v.videoTracks = Math.max(v.videoTracks, m.track);
        if (m.key && v.firstKeyframeAt === undefined) v.firstKeyframeAt = m.at;
        v.onFrame?.(m.at, m.key, m.track);
      } else if (m.t === 'node') {
        v.nodeId = m.id;
        v.onNode?.(m.id, m.at);
      } else if (m.t === 'report') reportWaiters.shift()?.(m.lines);
      else if (m.t === 'lag') lagWaiters.shift()?.(m.maxMs);
      else fail(m.message);
    });
  });
}

/** A viewer whose first complete key frame on a track started after `since` we wait for. */
export function nextKeyframe(v: BenchViewer, since: number, afterTrack: number, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(null), timeoutMs);
    const previous = v.onFrame;
    const done = (at: number | null) => {
      clearTimeout(timer);
      v.onFrame = previous;
      resolve(at);
    };
    v.onFrame = (at, key, track) => {
      previous?.(at, key, track);
      if (key && track > afterTrack && at >= since) done(at);
    };
  });
}

/** When the viewer's SDK switches to another node (a planned move completes), or null on timeout. */
export function nextNodeChange(v: BenchViewer, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const done = (at: number | null) => {
      clearTimeout(timer);
      v.onNode = undefined;
      resolve(at);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    v.onNode = (_id, at) => done(at);
  });
}

/** Record the completion time of every frame `v` receives until the returned function is called. */
export function recordFrames(v: BenchViewer): () => number[] {
  const times: number[] = [];
  const previous = v.onFrame;
  v.onFrame = (at, key, track) => {
    previous?.(at, key, track);
    times.push(at);
  };
  return () => {
    v.onFrame = previous;
    return times;
  };
}

/**
 * A page's longest time without a presented frame from `from` on, measured once it shows
 * pictures again (its latest frame under PLAYING_MS old) and not before `notBefore`; null when it
 * has not by `giveUpAt`. A page still frozen when the werift viewers' window closes is waited
 * for, not measured as if it had recovered then.
 */
export async function pageGapOncePlaying(page: Page, from: number, notBefore: number, giveUpAt: number): Promise<number | null> {
  for (;;) {
    const untilStart = notBefore - Date.now();
    await new Promise((r) => setTimeout(r, untilStart > 0 ? untilStart : 100));
    const now = Date.now();
    const frames = await presentedFrames(page);
    const latest = frames.length > 0 ? frames[frames.length - 1]! : 0;
    if (now - latest < PLAYING_MS) return longestGap(frames, from, latest);
    if (now >= giveUpAt) return null;
  }
}

/** A page whose latest presented frame is younger than this plays (ms; frames come every 33 ms). */
const PLAYING_MS = 250;

/** Longest gap between consecutive frames in [from, to], counting the edges (ms). */
export function longestGap(times: number[], from: number, to: number): number {
  const inside = times.filter((t) => t >= from && t <= to).sort((a, b) => a - b);
  let prev = from;
  let gap = 0;
  for (const t of inside) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, to - prev);
}

/**
 * Integrity alarms the viewers raised during the run (unverified or tampered): every relay of a
 * benchmark is honest, so each is a false alarm (it moved the viewer and reported the relay).
 */
export async function falseAlarms(viewers: BenchViewer[]): Promise<string[]> {
  const lines = await Promise.all(viewers.map((v) => v.report()));
  return lines.flat().filter((l) => l.startsWith('alarm: '));
}
