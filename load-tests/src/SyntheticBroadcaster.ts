import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import * as werift from 'werift';
import WebSocket from 'ws';
import { broadcast, type Broadcast, type BroadcastOptions } from '@cascade/client-sdk';
import { FrameStamper } from './FrameStamper.js';
import { installWeriftGlobals } from '@cascade/clients';

export interface SyntheticBroadcasterOptions {
  /** The origin's URL. */
  url: string;
  /** Broadcast token. */
  token: string;
  /** The cached VP8 clip (see ensureClip), or an audio+video clip (ensureAvClip) with `audio`. */
  clipPath: string;
  /** Also send the clip's Opus audio as an audio track (the clip must have one). Default false. */
  audio?: boolean;
  streamId?: string;
  title?: string;
  /** ffmpeg stops sending after this many seconds, whatever happens to this process. */
  maxDurationSec: number;
}

export interface SyntheticBroadcasterDeps {
  /** Wall clock, ms: the same clock the viewers read. */
  now: () => number;
  /** Called for things the report should mention (ffmpeg restarts). */
  warn: (message: string) => void;
}

/** ffmpeg restarts allowed before the broadcaster gives up on its feed. */
const MAX_FFMPEG_RESTARTS = 5;

/**
 * A cheap broadcaster: ffmpeg replays the cached clip as RTP (no encoding) to a local UDP
 * port, and a werift peer connection, driven by the SDK's broadcast(), forwards each packet
 * with its timestamp replaced by a wall-clock stamp (FrameStamper), so that viewers on this
 * machine can compute the end-to-end delay of every frame.
 */
export class SyntheticBroadcaster {
  readonly #options: SyntheticBroadcasterOptions;
  readonly #deps: SyntheticBroadcasterDeps;
  readonly #stamper: FrameStamper;
  #socket: dgram.Socket | undefined;
  #audioSocket: dgram.Socket | undefined;
  #ffmpeg: ChildProcess | undefined;
  #session: Broadcast | undefined;
  #track: werift.MediaStreamTrack | undefined;
  #audioTrack: werift.MediaStreamTrack | undefined;
  #restarts = 0;
  #packets = 0;
  #closed = false;
  /** Kills ffmpeg if this process exits without stop() (a crash, process.exit elsewhere). */
  readonly #onExit = () => this.#ffmpeg?.kill('SIGKILL');

  static async start(options: SyntheticBroadcasterOptions, deps: SyntheticBroadcasterDeps): Promise<SyntheticBroadcaster> {
    const b = new SyntheticBroadcaster(options, deps);
    try {
      await b.#start();
    } catch (err) {
      await b.stop();
      throw err;
    }
    return b;
  }

  private constructor(options: SyntheticBroadcasterOptions, deps: SyntheticBroadcasterDeps) {
    this.#options = options;
    this.#deps = deps;
    this.#stamper = new FrameStamper(deps.now);
  }

  get streamId(): string {
    return this.#session!.streamId;
  }

  /** RTP packets forwarded so far. */
  get packets(): number {
    return this.#packets;
  }

  get restarts(): number {
    return this.#restarts;
  }

  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    process.off('exit', this.#onExit);
    this.#ffmpeg?.kill('SIGKILL');
    this.#socket?.close();
    this.#audioSocket?.close();
    await this.#session?.stop().catch(() => {});
    this.#track?.stop();
    this.#audioTrack?.stop();
  }

  async #start(): Promise<void> {
    installWeriftGlobals();
    const track = new werift.MediaStreamTrack({ kind: 'video' });
    this.#track = track;
    const socket = dgram.createSocket('udp4');
    this.#socket = socket;
    socket.on('message', (buf) => {
      // A fresh packet per datagram: writeRtp works on it in place.
      const packet = werift.RtpPacket.deSerialize(buf);
      packet.header.timestamp = this.#stamper.stamp(packet.header.timestamp);
      this.#packets++;
      track.writeRtp(packet);
    });
    await bindLocal(socket);
    const tracks = [track];
    if (this.#options.audio) {
      // Audio goes as it comes: its timestamps are not stamped (delay is measured on video).
      const audio = new werift.MediaStreamTrack({ kind: 'audio' });
      this.#audioTrack = audio;
      const audioSocket = dgram.createSocket('udp4');
      this.#audioSocket = audioSocket;
      audioSocket.on('message', (buf) => {
        this.#packets++;
        audio.writeRtp(werift.RtpPacket.deSerialize(buf));
      });
      await bindLocal(audioSocket);
      tracks.push(audio);
    }
    const o = this.#options;
    this.#session = await broadcast({
      url: o.url,
      token: o.token,
      stream: new werift.MediaStream(tracks) as unknown as MediaStream,
      WebSocket: WebSocket as unknown as NonNullable<BroadcastOptions['WebSocket']>,
      handlerName: 'Chrome111',
      // One encoding: the clip is encoded once, at one size (werift cannot send simulcast layers).
      simulcast: false,
      title: o.title ?? 'Cascade load test',
      ...(o.streamId ? { streamId: o.streamId } : {}),
    });
    process.on('exit', this.#onExit);
    this.#spawnFfmpeg(socket.address().port, this.#audioSocket?.address().port);
  }

  #spawnFfmpeg(port: number, audioPort: number | undefined): void {
    const t = String(this.#options.maxDurationSec);
    // prettier-ignore
    const args = [
      '-hide_banner', '-loglevel', 'error', '-nostdin',
      '-re', '-stream_loop', '-1', '-i', this.#options.clipPath,
      '-map', '0:v:0', '-c:v', 'copy', '-t', t, '-payload_type', '96', '-ssrc', '1111',
      '-f', 'rtp', `rtp://127.0.0.1:${port}?pkt_size=1200`,
      ...(audioPort !== undefined
        ? ['-map', '0:a:0', '-c:a', 'copy', '-t', t, '-payload_type', '111', '-ssrc', '2222', '-f', 'rtp', `rtp://127.0.0.1:${audioPort}`]
        : []),
    ];
    const ff = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#ffmpeg = ff;
    let stderr = '';
    ff.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    ff.on('error', (err) => this.#deps.warn(`ffmpeg: ${err.message}`));
    ff.on('exit', (code, signal) => {
      // Exit 0 is the end of -t: the run is long over, nothing to restart.
      if (this.#closed || code === 0) return;
      if (this.#restarts >= MAX_FFMPEG_RESTARTS) {
        this.#deps.warn(`ffmpeg exited (${signal ?? code}) ${MAX_FFMPEG_RESTARTS + 1} times; the broadcaster stopped sending: ${stderr.trim()}`);
        return;
      }
      this.#restarts++;
      this.#deps.warn(`ffmpeg exited (${signal ?? code}), restarted: ${stderr.trim()}`);
      setTimeout(() => !this.#closed && this.#spawnFfmpeg(port, audioPort), 500);
    });
  }
}

function bindLocal(socket: dgram.Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
}
