import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { freePort } from '@cascade/testing';
import { AUDIO_PT, MOUNTPOINT, VIDEO_PT, writeJanusConfig } from './janusConfig.js';
import { allowedCpus, childPids, processName } from './procStat.js';
import { TargetUnavailableError, type RealTarget } from './RealTarget.js';

export interface JanusStreamingOptions {
  /** Core Janus (all its threads) is pinned to. */
  core: number;
  /** Core the feed (ffmpeg) runs on. */
  feedCore: number;
  /** Private folder for its configuration (removed by the caller). */
  dir: string;
  /** The audio+video clip (ensureAvClip). */
  clip: string;
  /** Janus and ffmpeg are killed by `timeout` after this long, whatever happens to us. */
  deadlineSec: number;
  /** The janus binary. Default: `janus` on the PATH. */
  bin?: string;
  /**
   * A folder with another libsrtp2.so.1 for Janus (LD_LIBRARY_PATH): the worker build's
   * OpenSSL one, to compare the servers on the same SRTP library. Default: Debian's (NSS).
   */
  libraryPath?: string;
  /**
   * Janus's `event_loops`: threads that serve every handle's media. 0 keeps Janus's default,
   * one thread per handle. Default 1: everything runs on one pinned core anyway.
   */
  eventLoops?: number;
}

const READY_TIMEOUT_MS = 15_000;

/** Where Debian (and a source build) put Janus and its Streaming plugin and WebSocket transport. */
function findJanus(explicit?: string): { bin: string; libDir: string } {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  const bin = explicit
    ? executable(explicit)
      ? explicit
      : undefined
    : (process.env.PATH ?? '/usr/bin:/usr/local/bin')
        .split(':')
        .map((d) => path.join(d, 'janus'))
        .find(executable);
  if (!bin) throw new TargetUnavailableError(`janus is not installed${explicit ? ` at ${explicit}` : ''} (Debian package \`janus\`; \`npm run bench\` installs it through scripts/setup.sh bench)`);
  const candidates: string[] = [];
  for (const base of ['/usr/lib', '/usr/local/lib', '/opt/janus/lib']) {
    candidates.push(path.join(base, 'janus'));
    try {
      for (const d of readdirSync(base)) candidates.push(path.join(base, d, 'janus'));
    } catch {
      // no such folder
    }
  }
  const libDir = candidates.find(
    (d) => existsSync(path.join(d, 'plugins', 'libjanus_streaming.so')) && existsSync(path.join(d, 'transports', 'libjanus_websockets.so')),
  );
  if (!libDir) throw new TargetUnavailableError('janus is installed but its Streaming plugin or WebSocket transport was not found');
  return { bin, libDir };
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Janus (Debian's 1.1.x) as the peer baseline on the real path: its Streaming plugin with one
 * RTP mountpoint (Opus + VP8, fed by ffmpeg replaying the same clip Cascade's broadcaster
 * sends), viewers through its WebSocket API, configured from a private folder: only that
 * plugin and transport, on 127.0.0.1 (ICE candidates on `lo` only), no event handlers,
 * errors-only logging, no session timeout.
 */
export class JanusStreaming implements RealTarget {
  readonly kind = 'janus';
  join: RealTarget['join'] = { server: 'janus', url: '', streamId: String(MOUNTPOINT) };
  #proc: ChildProcess | undefined;
  #feed: ChildProcess | undefined;
  #pid = 0;
  #version = '';
  #output = '';
  #feedOutput = '';
  #exited = false;
  #feedExited = false;
  #closed = false;
  #eventLoops = 1;
  #libraryPath: string | undefined;
  /** Kills Janus and the feed if this process exits without close(); `timeout` and -t bound them otherwise. */
  readonly #onExit = () => {
    try {
      if (this.#pid && processName(this.#pid) === 'janus') process.kill(this.#pid, 'SIGKILL');
    } catch {
      // already gone
    }
    this.#killFeed();
  };

  /** The feed's whole process group (taskset execs ffmpeg: one process, but say it as a group). */
  #killFeed(): void {
    const pid = this.#feed?.pid;
    if (!pid || this.#feedExited) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }

  static async start(o: JanusStreamingOptions): Promise<JanusStreaming> {
    const { bin, libDir } = findJanus(o.bin);
    const t = new JanusStreaming();
    try {
      await t.#start(o, bin, libDir);
    } catch (err) {
      await t.close();
      throw err;
    }
    return t;
  }

  async #start(o: JanusStreamingOptions, bin: string, libDir: string): Promise<void> {
    this.#eventLoops = o.eventLoops ?? 1;
    for (const d of ['conf', 'plugins', 'transports', 'events', 'loggers']) mkdirSync(path.join(o.dir, d), { recursive: true });
    symlinkSync(path.join(libDir, 'plugins', 'libjanus_streaming.so'), path.join(o.dir, 'plugins', 'libjanus_streaming.so'));
    symlinkSync(path.join(libDir, 'transports', 'libjanus_websockets.so'), path.join(o.dir, 'transports', 'libjanus_websockets.so'));
    const wsPort = await freePort();
    const audioPort = await freeUdpPort();
    const videoPort = await freeUdpPort();
    const conf = writeJanusConfig(o.dir, this.#eventLoops, { wsPort, audioPort, videoPort });
    const proc = this.#spawnJanus(o, bin, conf);
    this.join = { server: 'janus', url: `ws://127.0.0.1:${wsPort}/`, streamId: String(MOUNTPOINT) };
    await this.#whenReady(proc);
    this.#startFeed(o, audioPort, videoPort);
  }

  /** Starts Janus on its core (LD_LIBRARY_PATH for another libsrtp2), keeping the tail of its output for errors. */
  #spawnJanus(o: JanusStreamingOptions, bin: string, conf: string): ChildProcess {
    // `timeout` bounds Janus's life even if this process dies; taskset execs janus.
    const proc = spawn(
      'timeout',
      ['-k', '3', String(o.deadlineSec), 'taskset', '-c', String(o.core), bin, '-C', path.join(conf, 'janus.jcfg'), '-F', conf, '-o'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: o.libraryPath ? { ...process.env, LD_LIBRARY_PATH: o.libraryPath } : process.env },
    );
    this.#libraryPath = o.libraryPath;
    this.#proc = proc;
    process.once('exit', this.#onExit);
    const collect = (d: Buffer) => (this.#output = (this.#output + d.toString()).slice(-4000));
    proc.stdout!.on('data', collect);
    proc.stderr!.on('data', collect);
    proc.on('exit', () => {
      this.#exited = true;
      process.off('exit', this.#onExit);
    });
    proc.on('error', () => (this.#exited = true));
    return proc;
  }

  /** Waits until Janus (the process taskset became) answers `info` on its WebSocket API; throws if it exits or stays silent. */
  async #whenReady(proc: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.#exited) throw new Error(`janus exited at start: ${this.#output.trim().slice(-1500)}`);
      if (!this.#pid) {
        const child = childPids(proc.pid!)[0];
        if (child && processName(child) === 'janus') this.#pid = child;
      }
      if (this.#pid) {
        const info = await wsInfo(this.join.url).catch(() => undefined);
        if (info) {
          this.#version = String(info.version_string ?? info.version ?? '');
          break;
        }
      }
      if (Date.now() > deadline) throw new Error(`janus did not answer on ${this.join.url}: ${this.#output.trim().slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The feed: ffmpeg replaying the clip to the mountpoint's ports, on the feed core. */
  #startFeed(o: JanusStreamingOptions, audioPort: number, videoPort: number): void {
    // ffmpeg stops by itself at the deadline (-t per output); in its own process group so that
    // close() ends it and not only the taskset wrapper (which execs it).
    const t = String(o.deadlineSec);
    // prettier-ignore
    const args = [
      '-c', String(o.feedCore),
      'ffmpeg', '-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-stream_loop', '-1', '-i', o.clip,
      '-map', '0:v:0', '-c:v', 'copy', '-t', t, '-payload_type', String(VIDEO_PT), '-f', 'rtp', `rtp://127.0.0.1:${videoPort}?pkt_size=1200`,
      '-map', '0:a:0', '-c:a', 'copy', '-t', t, '-payload_type', String(AUDIO_PT), '-f', 'rtp', `rtp://127.0.0.1:${audioPort}`,
    ];
    const feed = spawn('taskset', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    this.#feed = feed;
    feed.stderr!.on('data', (d: Buffer) => (this.#feedOutput = (this.#feedOutput + d.toString()).slice(-2000)));
    feed.on('exit', () => (this.#feedExited = true));
    feed.on('error', (e) => {
      this.#feedExited = true;
      this.#feedOutput += e.message;
    });
  }

  pids(): number[] {
    return this.#pid ? [this.#pid] : [];
  }

  failure(): string | undefined {
    if (this.#exited) return `janus exited: ${this.#output.trim().slice(-500)}`;
    if (this.#feedExited) return `the feed (ffmpeg) stopped: ${this.#feedOutput.trim() || 'no output'}`;
    return undefined;
  }

  info(): Record<string, unknown> {
    return {
      version: this.#version,
      pid: this.#pid,
      cpusAllowed: this.#pid ? allowedCpus(this.#pid) : null,
      eventLoops: this.#eventLoops || "Janus's default (one thread per handle)",
      libsrtp2: this.#libraryPath ? `${this.#libraryPath}/libsrtp2.so.1 (LD_LIBRARY_PATH)` : "Debian's (NSS)",
      viewer: 'Streaming plugin, RTP mountpoint (Opus + VP8), WebRTC viewers through the WebSocket API',
      feed: 'ffmpeg replaying the clip straight to the mountpoint ports (same file as the Cascade broadcaster)',
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#killFeed();
    const proc = this.#proc;
    if (!proc || this.#exited) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const ours = () => this.#pid && processName(this.#pid) === 'janus';
    try {
      // SIGKILL: a graceful stop tears a thousand sessions down one by one.
      if (ours()) process.kill(this.#pid, 'SIGKILL');
      else proc.kill('SIGKILL');
    } catch {
      // gone
    }
    await exited;
  }
}

/** Janus's `info` over its WebSocket API (the readiness probe). */
function wsInfo(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'janus-protocol');
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no answer'));
    }, 2000);
    ws.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.once('open', () => ws.send(JSON.stringify({ janus: 'info', transaction: 'ready' })));
    ws.on('message', (d) => {
      clearTimeout(timer);
      ws.close();
      try {
        resolve(JSON.parse(String(d)) as Record<string, unknown>);
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}
