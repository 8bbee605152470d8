import { spawn, type ChildProcess } from 'node:child_process';
import { INGRESS_PT, INGRESS_SSRC } from './SfuTarget.js';

export interface FeedOptions {
  /** The cached VP8 clip (ensureClip). */
  clip: string;
  port: number;
  rtcpPort: number;
  /** Core ffmpeg is pinned to (the load core). */
  core: number;
  /** ffmpeg stops by itself after this long (output duration). */
  maxSec: number;
}

/**
 * The broadcaster: ffmpeg replaying the cached VP8 clip without re-encoding (`-c:v copy`,
 * ~1 % CPU), as RTP with a fixed SSRC and payload type, to an SFU's plain-RTP ingress.
 * The same command feeds both SFUs, so both forward the identical packet stream.
 */
export class FfmpegFeed {
  readonly #proc: ChildProcess;
  #output = '';
  #exited = false;
  /** Kills ffmpeg if this process exits without stop(); `-t` bounds it otherwise. */
  readonly #onExit = () => this.#proc.kill('SIGKILL');

  constructor(o: FeedOptions) {
    // prettier-ignore
    const args = [
      '-c', String(o.core), 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-nostdin',
      '-re', '-stream_loop', '-1', '-i', o.clip, '-an', '-c:v', 'copy', '-t', String(o.maxSec),
      '-payload_type', String(INGRESS_PT), '-ssrc', String(INGRESS_SSRC),
      '-f', 'rtp', `rtp://127.0.0.1:${o.port}?rtcpport=${o.rtcpPort}&pkt_size=1200`,
    ];
    this.#proc = spawn('taskset', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#proc.stderr!.on('data', (d: Buffer) => (this.#output = (this.#output + d.toString()).slice(-2000)));
    process.once('exit', this.#onExit);
    this.#proc.on('exit', () => {
      this.#exited = true;
      process.off('exit', this.#onExit);
    });
    this.#proc.on('error', (e) => {
      this.#exited = true;
      this.#output += e.message;
    });
  }

  get pid(): number | undefined {
    return this.#proc.pid;
  }

  /** Set once ffmpeg has stopped, with its last error output. */
  get failure(): string | undefined {
    return this.#exited ? `ffmpeg stopped: ${this.#output.trim() || 'no output'}` : undefined;
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#proc.once('exit', () => resolve()));
    this.#proc.kill('SIGKILL');
    await exited;
  }
}
