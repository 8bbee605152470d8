import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { statfs, stat, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { types } from 'mediasoup';
import { TypedEmitter, type Logger } from '@cascade/protocol';
import type { LocalStream } from '@cascade/sfu';
import { finalizeRecording } from './finalize.js';
import { containerFor, ffmpegArgs, ffmpegInputSdp, recorderCapabilities, type Container, type RecordedTrack } from './ffmpegInput.js';

export interface RecorderLimits {
  /** Stop when the file reaches this size, bytes. */
  maxBytes: number;
  /** Stop after this long, ms. */
  maxDurationMs: number;
  /** Stop when the recordings' disk has less free space than this, bytes. */
  minFreeBytes: number;
}

/** Why a recording ended, and so its final state. */
export type RecorderEnd =
  | { state: 'complete'; reason: string }
  | { state: 'stopped'; reason: string }
  | { state: 'failed'; reason: string };

export type RecorderEvents = {
  /** Once, after ffmpeg exited and the file is final. */
  close: [end: RecorderEnd, file: { bytes: number; durationMs: number }];
  listenererror: [event: string, error: unknown];
};

/** How often a recording asks for a key frame (its seek points), ms. */
const KEY_FRAME_INTERVAL_MS = 4000;

/** Two consecutive free UDP ports on loopback (RTP, RTCP) for ffmpeg to listen on. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const a = dgram.createSocket('udp4');
    const b = dgram.createSocket('udp4');
    try {
      await new Promise<void>((res, rej) => a.once('error', rej).bind(0, '127.0.0.1', () => res()));
      const port = a.address().port;
      if (port % 2 === 1 || port >= 65535) continue;
      await new Promise<void>((res, rej) => b.once('error', rej).bind(port + 1, '127.0.0.1', () => res()));
      return port;
    } catch {
      // taken: try another
    } finally {
      a.close();
      try {
        b.close();
      } catch {
        // never bound
      }
    }
  }
  throw new Error('no free UDP port pair on loopback');
}

/** Resolves once something (ffmpeg) holds the UDP port. */
async function portTaken(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const s = dgram.createSocket('udp4');
    const free = await new Promise<boolean>((res) => {
      s.once('error', () => res(false));
      s.bind(port, '127.0.0.1', () => res(true));
    });
    s.close();
    if (!free) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/**
 * One recording of one stream: a PlainTransport and a consumer per source on the stream's
 * primary router, sending RTP on loopback to an ffmpeg that copies it into a file. The live
 * stream does not depend on it: whatever happens to ffmpeg or the disk, viewers are other
 * consumers of the same producers. Stops on stop(), at its size, duration or free-space limit,
 * or when ffmpeg exits (a full disk says so).
 */
export class Recorder extends TypedEmitter<RecorderEvents> {
  readonly file: string;
  readonly container: Container;
  /** The producers recorded (a source replaced means a new recording). */
  readonly producerIds: ReadonlySet<string>;
  readonly startedAt = Date.now();
  readonly #transports: types.PlainTransport[];
  readonly #ffmpeg: ChildProcess;
  readonly #sdpFile: string;
  readonly #limits: RecorderLimits;
  readonly #log: Logger;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #keyFrames: ReturnType<typeof setInterval>;
  #stderr = '';
  #end: RecorderEnd | undefined;
  #stoppedAt: number | undefined;
  #closed = false;

  /** Start recording `stream` into `dir/<base>.<ext>`; resolves once ffmpeg listens and the consumers flow. */
  static async start(stream: LocalStream, target: { dir: string; base: string }, limits: RecorderLimits, deps: { logger: Logger }): Promise<Recorder> {
    const sources = stream.sources;
    if (sources.length === 0) throw new Error('the stream has no media yet');
    const router = await stream.router.primary();
    const transports: types.PlainTransport[] = [];
    const consumers: types.Consumer[] = [];
    const tracks: RecordedTrack[] = [];
    try {
      for (const producer of sources) {
        const port = await freePortPair();
        const t = await router.createPlainTransport({ listenIp: { ip: '127.0.0.1' }, rtcpMux: false, comedia: false, appData: { recording: target.base } });
        transports.push(t);
        await t.connect({ ip: '127.0.0.1', port, rtcpPort: port + 1 });
        const c = await t.consume({ producerId: producer.id, rtpCapabilities: recorderCapabilities(router.rtpCapabilities), paused: true });
        consumers.push(c);
        tracks.push({ kind: producer.kind, port, rtpParameters: c.rtpParameters });
      }
      const container = containerFor(tracks);
      const file = path.join(target.dir, `${target.base}.${container.ext}`);
      const sdpFile = path.join(target.dir, `.${target.base}.sdp`);
      await writeFile(sdpFile, ffmpegInputSdp(tracks));
      const ffmpeg = spawn('ffmpeg', ffmpegArgs(sdpFile, container, file), { stdio: ['ignore', 'ignore', 'pipe'] });
      const rec = new Recorder(
        { file, container, transports, consumers, ffmpeg, sdpFile, producerIds: new Set(sources.map((p) => p.id)) },
        limits,
        deps.logger.child({ component: 'Recorder', streamId: stream.id, recording: target.base }),
      );
      // ffmpeg binds its ports after reading the SDP; what is sent before would be lost.
      if (!(await portTaken(tracks[0]!.port, 10_000))) {
        rec.#finish({ state: 'failed', reason: 'ffmpeg did not start listening' });
        throw new Error(`ffmpeg did not start: ${rec.#stderr.trim()}`);
      }
      for (const c of consumers) {
        await c.resume();
        // Decoding (and ffmpeg's probing) starts at a key frame.
        if (c.kind === 'video') await c.requestKeyFrame();
      }
      return rec;
    } catch (err) {
      for (const t of transports) t.close();
      throw err;
    }
  }

  private constructor(
    parts: { file: string; container: Container; transports: types.PlainTransport[]; consumers: types.Consumer[]; ffmpeg: ChildProcess; sdpFile: string; producerIds: Set<string> },
    limits: RecorderLimits,
    log: Logger,
  ) {
    super();
    this.file = parts.file;
    this.container = parts.container;
    this.producerIds = parts.producerIds;
    this.#transports = parts.transports;
    this.#ffmpeg = parts.ffmpeg;
    this.#sdpFile = parts.sdpFile;
    this.#limits = limits;
    this.#log = log;
    parts.ffmpeg.stderr!.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-4000)));
    parts.ffmpeg.once('error', (err) => this.#finish({ state: 'failed', reason: `cannot run ffmpeg: ${err.message}` }));
    parts.ffmpeg.once('exit', (code, signal) => void this.#exited(code, signal));
    this.#timer = setInterval(() => void this.#checkLimits(), 1000);
    this.#timer.unref();
    // A replay seeks to key frames, and a browser broadcaster sends them only when asked: ask
    // now and then (the stream's key frame throttle still applies).
    this.#keyFrames = setInterval(() => {
      for (const c of parts.consumers) if (c.kind === 'video' && !c.closed) void c.requestKeyFrame().catch(() => {});
    }, KEY_FRAME_INTERVAL_MS);
    this.#keyFrames.unref();
    this.#log.info({ file: this.file }, 'recording started');
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Finish the file (ffmpeg writes its index on SIGINT) and end as `end`. */
  stop(end: RecorderEnd = { state: 'complete', reason: 'stopped' }): void {
    if (this.#end) return;
    this.#end = end;
    this.#stoppedAt = Date.now();
    // ffmpeg finishes its file (index, duration) on SIGINT, but only once a read returns: when no
    // packet comes any more (the stream ended), a second SIGINT interrupts the read. The
    // transports close when it has exited. One that still hangs is killed: the file then lacks
    // its index, not its media.
    const running = () => this.#ffmpeg.exitCode === null && this.#ffmpeg.signalCode === null;
    this.#ffmpeg.kill('SIGINT');
    setTimeout(() => running() && this.#ffmpeg.kill('SIGINT'), 1000).unref();
    setTimeout(() => running() && this.#ffmpeg.kill('SIGKILL'), 10_000).unref();
  }

  async #checkLimits(): Promise<void> {
    if (this.#end) return;
    try {
      const [{ size }, fs] = await Promise.all([stat(this.file).catch(() => ({ size: 0 })), statfs(path.dirname(this.file))]);
      const free = fs.bavail * fs.bsize;
      if (free < this.#limits.minFreeBytes) {
        this.#log.error({ file: this.file, freeBytes: free, minFreeBytes: this.#limits.minFreeBytes }, 'recording stopped: the recordings disk is full; the live stream goes on');
        this.stop({ state: 'stopped', reason: 'disk full' });
      } else if (size >= this.#limits.maxBytes) {
        this.#log.warn({ file: this.file, bytes: size }, 'recording stopped at its size limit (recording.maxBytes)');
        this.stop({ state: 'stopped', reason: 'size limit' });
      } else if (Date.now() - this.startedAt >= this.#limits.maxDurationMs) {
        this.#log.warn({ file: this.file }, 'recording stopped at its duration limit (recording.maxDurationMs)');
        this.stop({ state: 'stopped', reason: 'duration limit' });
      }
    } catch (err) {
      this.#log.warn({ err }, 'cannot check the recording limits');
    }
  }

  async #exited(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (!this.#end) {
      this.#stoppedAt = Date.now();
      // ffmpeg stopped by itself: a full disk is the usual reason, and says so in its output.
      const full = /No space left on device/i.test(this.#stderr);
      this.#end = full ? { state: 'stopped', reason: 'disk full' } : { state: 'failed', reason: `ffmpeg exited (${signal ?? code})` };
      if (full) this.#log.error({ file: this.file }, 'recording stopped: the recordings disk is full; the live stream goes on');
      else this.#log.error({ file: this.file, code, signal, stderr: this.#stderr.trim().slice(-500) }, 'recording stopped: ffmpeg exited');
      for (const t of this.#transports) t.close();
    }
    this.#finish(this.#end);
  }

  #finish(end: RecorderEnd): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#end ??= end;
    clearInterval(this.#timer);
    clearInterval(this.#keyFrames);
    for (const t of this.#transports) t.close();
    if (this.#ffmpeg.exitCode === null && this.#ffmpeg.signalCode === null) this.#ffmpeg.kill('SIGKILL');
    void (async () => {
      await rm(this.#sdpFile, { force: true });
      const final = await finalizeRecording(this.file, this.container, this.#log);
      const bytes = final.bytes;
      const durationMs = final.durationMs ?? (this.#stoppedAt ?? Date.now()) - this.startedAt;
      this.#log.info({ file: this.file, bytes, durationMs, state: this.#end!.state, reason: this.#end!.reason }, 'recording finished');
      this.safeEmit('close', this.#end!, { bytes, durationMs });
      this.removeAllListeners();
    })();
  }
}
