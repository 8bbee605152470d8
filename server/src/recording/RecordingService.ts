import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CascadeError, TypedEmitter, type Logger } from '@cascade/protocol';
import type { TokenService } from '@cascade/controller';
import type { LocalStream, MediaNode } from '@cascade/sfu';
import { Recorder, type RecorderEnd, type RecorderLimits } from './Recorder.js';

export interface RecordingInfo {
  id: string;
  streamId: string;
  title: string;
  /** The broadcaster (token subject) whose stream it is: who may delete it besides the operator. */
  owner: string;
  /** recording: being written; complete: the stream ended or the broadcaster stopped it; stopped: a limit (disk, size, duration) cut it; failed: no usable file. */
  state: 'recording' | RecorderEnd['state'];
  reason?: string;
  mimeType: string;
  /** File name in the recordings folder. */
  file: string;
  startedAt: number;
  endedAt?: number;
  durationMs?: number;
  bytes: number;
}

export interface RecordingOptions extends RecorderLimits {
  dir: string;
  /** Recordings that ended longer ago than this are deleted, ms; 0 keeps them. */
  retentionMs: number;
}

export type RecordingServiceObserverEvents = {
  recordingstart: [info: RecordingInfo];
  recordingend: [info: RecordingInfo];
  listenererror: [event: string, error: unknown];
};

/** A stream the broadcaster asked to record: recorded whenever it has media, in segments when its sources change. */
interface Wanted {
  stream: LocalStream;
  owner: string;
  recorder: Recorder | undefined;
  info: RecordingInfo | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  detach: () => void;
}

/**
 * Recordings on the origin (`recording.enabled`): started per stream by its broadcaster
 * (POST /api/streams/<id>/recording, WHIP `?record=1`, RTP ingest `record: true`), written by
 * a Recorder, listed with a JSON file beside each recording (so the list survives restarts),
 * deleted by their broadcaster or the operator, or when older than retentionMs.
 */
export class RecordingService {
  readonly observer = new TypedEmitter<RecordingServiceObserverEvents>();
  readonly #node: MediaNode;
  readonly #options: RecordingOptions;
  readonly #tokens: TokenService;
  readonly #log: Logger;
  readonly #infos = new Map<string, RecordingInfo>();
  readonly #wanted = new Map<string, Wanted>();
  readonly #sweep: ReturnType<typeof setInterval>;
  #closed = false;

  static async create(node: MediaNode, options: RecordingOptions, deps: { tokens: TokenService; logger: Logger }): Promise<RecordingService> {
    await mkdir(options.dir, { recursive: true });
    const service = new RecordingService(node, options, deps);
    await service.#load();
    await service.#expire();
    return service;
  }

  private constructor(node: MediaNode, options: RecordingOptions, deps: { tokens: TokenService; logger: Logger }) {
    this.#node = node;
    this.#options = options;
    this.#tokens = deps.tokens;
    this.#log = deps.logger.child({ component: 'RecordingService' });
    this.#sweep = setInterval(() => void this.#expire(), Math.min(3_600_000, Math.max(10_000, options.retentionMs / 4 || 3_600_000)));
    this.#sweep.unref();
  }

  /** Newest first. */
  list(): RecordingInfo[] {
    return [...this.#infos.values()].sort((a, b) => b.startedAt - a.startedAt);
  }

  get(id: string): RecordingInfo {
    const info = this.#infos.get(id);
    if (!info) throw new CascadeError('CASCADE_ERR_RECORDING_NOT_FOUND', id);
    return info;
  }

  /** Absolute path of a recording's file (only ids from the list: never a path built from input). */
  filePath(id: string): string {
    return path.resolve(this.#options.dir, this.get(id).file);
  }

  get activeCount(): number {
    return [...this.#wanted.values()].filter((w) => w.recorder).length;
  }

  /** HTTP: the stream's broadcaster (or the operator) starts recording it. */
  async startByToken(streamId: string, token: string | undefined, owner: string | undefined): Promise<RecordingInfo | undefined> {
    if (owner === undefined) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', `${streamId} is not broadcast on this origin`);
    this.#authorize(token, owner);
    return this.start(streamId, owner);
  }

  /** Start recording a stream published here; idempotent. Resolves with the recording once it runs (undefined while the stream has no media yet). */
  async start(streamId: string, owner: string): Promise<RecordingInfo | undefined> {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_NODE_SHUTTING_DOWN');
    const stream = this.#node.stream(streamId);
    if (!stream) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', streamId);
    if (stream.state === 'ended') throw new CascadeError('CASCADE_ERR_STREAM_ENDED', streamId);
    let w = this.#wanted.get(streamId);
    if (w) return w.info?.state === 'recording' ? w.info : undefined;
    const onSource = () => this.#schedule(w!, 1000);
    const onState = (s: string) => s === 'ended' && this.#release(streamId, 'stream ended');
    const onClose = () => this.#release(streamId, 'stream ended');
    stream.on('sourceadd', onSource);
    stream.on('statechange', onState);
    stream.observer.once('close', onClose);
    w = {
      stream,
      owner,
      recorder: undefined,
      info: undefined,
      timer: undefined,
      detach: () => {
        stream.off('sourceadd', onSource);
        stream.off('statechange', onState);
        stream.observer.off('close', onClose);
      },
    };
    this.#wanted.set(streamId, w);
    this.#log.info({ streamId, owner }, 'recording requested');
    if (stream.sources.length > 0) await this.#begin(w);
    return w.info;
  }

  /** HTTP: stop recording a stream (its broadcaster or the operator). */
  stopByToken(streamId: string, token: string | undefined): void {
    const w = this.#wanted.get(streamId);
    if (!w) throw new CascadeError('CASCADE_ERR_RECORDING_NOT_FOUND', `${streamId} is not being recorded`);
    this.#authorize(token, w.owner);
    this.#release(streamId, 'stopped by the broadcaster');
  }

  /** HTTP: delete a recording (its broadcaster or the operator); one in progress is stopped first. */
  async deleteByToken(id: string, token: string | undefined): Promise<void> {
    const info = this.get(id);
    this.#authorize(token, info.owner);
    const w = [...this.#wanted.values()].find((x) => x.info?.id === id);
    if (w) {
      const closed = w.recorder ? new Promise((r) => w.recorder!.once('close', r)) : Promise.resolve();
      this.#release(info.streamId, 'deleted');
      await closed;
    }
    this.#infos.delete(id);
    await rm(path.join(this.#options.dir, info.file), { force: true });
    await rm(this.#sidecar(id), { force: true });
    this.#log.info({ recordingId: id, streamId: info.streamId }, 'recording deleted');
  }

  /** Finish every recording (their files get their index) before the origin goes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    const closing = [...this.#wanted.values()].filter((w) => w.recorder).map((w) => new Promise((r) => w.recorder!.once('close', r)));
    for (const id of [...this.#wanted.keys()]) this.#release(id, 'origin shutting down');
    await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 12_000))]);
  }

  /** The broadcaster of `owner`'s stream, or the operator (admin scope). */
  #authorize(token: string | undefined, owner: string): void {
    try {
      this.#tokens.verify(token, 'operator');
      return;
    } catch (err) {
      if ((err as CascadeError).code !== 'CASCADE_ERR_AUTH_FORBIDDEN') throw err;
    }
    const claims = this.#tokens.verify(token, 'broadcast');
    if (claims.sub !== owner) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'only the stream’s broadcaster or the operator may do this');
  }

  /** (Re)start recording a little after sources changed, so that audio and video are taken together. */
  #schedule(w: Wanted, delayMs: number): void {
    clearTimeout(w.timer);
    w.timer = setTimeout(() => {
      const current = w.recorder;
      const sources = w.stream.sources;
      if (current && sources.every((p) => current.producerIds.has(p.id))) return;
      if (current) {
        // The broadcaster came back with new producers: this segment ends, the next one starts.
        current.once('close', () => this.#wanted.get(w.stream.id) === w && void this.#begin(w));
        current.stop({ state: 'complete', reason: 'broadcaster reconnected' });
      } else {
        void this.#begin(w);
      }
    }, delayMs);
    w.timer.unref();
  }

  async #begin(w: Wanted): Promise<void> {
    if (w.recorder || this.#wanted.get(w.stream.id) !== w || w.stream.sources.length === 0) return;
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
    const id = `${w.stream.id}-${stamp}-${randomBytes(2).toString('hex')}`;
    let recorder: Recorder;
    try {
      recorder = await Recorder.start(w.stream, { dir: this.#options.dir, base: id }, this.#options, { logger: this.#log });
    } catch (err) {
      this.#log.error({ err, streamId: w.stream.id }, 'cannot start recording; the live stream goes on');
      return;
    }
    if (this.#wanted.get(w.stream.id) !== w) {
      recorder.stop();
      return;
    }
    const info: RecordingInfo = {
      id,
      streamId: w.stream.id,
      title: w.stream.title,
      owner: w.owner,
      state: 'recording',
      mimeType: recorder.container.mimeType,
      file: path.basename(recorder.file),
      startedAt: recorder.startedAt,
      bytes: 0,
    };
    w.recorder = recorder;
    w.info = info;
    this.#infos.set(id, info);
    await this.#save(info);
    this.observer.safeEmit('recordingstart', info);
    recorder.once('close', (end, file) => {
      if (w.recorder === recorder) w.recorder = undefined;
      const done: RecordingInfo = { ...info, state: end.state, reason: end.reason, endedAt: Date.now(), durationMs: file.durationMs, bytes: file.bytes };
      if (!this.#infos.has(id)) return; // deleted meanwhile
      this.#infos.set(id, done);
      if (w.info?.id === id) w.info = done;
      void this.#save(done);
      this.observer.safeEmit('recordingend', done);
    });
  }

  #release(streamId: string, reason: string): void {
    const w = this.#wanted.get(streamId);
    if (!w) return;
    this.#wanted.delete(streamId);
    clearTimeout(w.timer);
    w.detach();
    w.recorder?.stop({ state: 'complete', reason });
  }

  #sidecar(id: string): string {
    return path.join(this.#options.dir, `${id}.json`);
  }

  async #save(info: RecordingInfo): Promise<void> {
    try {
      await writeFile(this.#sidecar(info.id), JSON.stringify(info));
    } catch (err) {
      // A full disk: the file itself says what it holds; the list is rebuilt from memory meanwhile.
      this.#log.warn({ err, recordingId: info.id }, 'cannot write the recording’s description');
    }
  }

  /** Read the descriptions left by earlier runs; one still "recording" was cut by a restart. */
  async #load(): Promise<void> {
    for (const name of await readdir(this.#options.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const info = JSON.parse(await readFile(path.join(this.#options.dir, name), 'utf8')) as RecordingInfo;
        if (info.state === 'recording') {
          const bytes = (await stat(path.join(this.#options.dir, info.file)).catch(() => ({ size: 0 }))).size;
          Object.assign(info, { state: 'stopped', reason: 'origin restarted', endedAt: info.startedAt, bytes });
          await this.#save(info);
        }
        this.#infos.set(info.id, info);
      } catch (err) {
        this.#log.warn({ err, file: name }, 'unreadable recording description skipped');
      }
    }
  }

  async #expire(): Promise<void> {
    if (this.#options.retentionMs <= 0) return;
    const before = Date.now() - this.#options.retentionMs;
    for (const info of [...this.#infos.values()]) {
      if (info.state === 'recording' || (info.endedAt ?? info.startedAt) > before) continue;
      this.#infos.delete(info.id);
      await rm(path.join(this.#options.dir, info.file), { force: true });
      await rm(this.#sidecar(info.id), { force: true });
      this.#log.info({ recordingId: info.id }, 'recording expired (recording.retentionMs)');
    }
  }
}
