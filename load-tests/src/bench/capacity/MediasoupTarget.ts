import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DriverReply, DriverRequest } from './mediasoupDriver.js';
import { allowedCpus, pinProcess, processName } from './procStat.js';
import type { SfuTarget } from './SfuTarget.js';

export interface MediasoupTargetOptions {
  workerBin: string;
  /** Core for the worker (the SFU). */
  sfuCore: number;
  /** Core for the Node process driving it (idle while measuring). */
  driverCore: number;
  /** The driver and its worker exit by themselves after this long. */
  deadlineSec: number;
  /** SRTP on the viewers' transports (default true); false for the plain-RTP comparison. */
  srtp?: boolean;
}

const START_TIMEOUT_MS = 20_000;
/** Per viewer, generous: three worker requests each. */
const ADD_TIMEOUT_MS_PER_VIEWER = 100;

/** A mediasoup 3.12 worker in a child process, pinned to `sfuCore` (see mediasoupDriver.ts). */
export class MediasoupTarget implements SfuTarget {
  readonly kind = 'mediasoup';
  readonly #child: ChildProcess;
  #pid = 0;
  #ingress = { port: 0, rtcpPort: 0 };
  #version = '';
  #nextId = 1;
  #pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  #died: string | undefined;
  #closed = false;
  #pinning: Record<string, string | null> = {};
  #srtp = true;

  static async start(o: MediasoupTargetOptions): Promise<MediasoupTarget> {
    const t = new MediasoupTarget();
    try {
      await t.#start(o);
    } catch (err) {
      await t.close();
      throw err;
    }
    return t;
  }

  private constructor() {
    const script = fileURLToPath(new URL('./mediasoupDriver.js', import.meta.url));
    this.#child = fork(script, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    let stderr = '';
    this.#child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    this.#child.on('message', (m: DriverReply) => {
      if (m.type === 'added') this.#settle(m.id);
      else if (m.type === 'error') {
        if (m.id !== undefined) this.#settle(m.id, new Error(`mediasoup: ${m.message}`));
        else this.#died = m.message;
      }
    });
    this.#child.on('exit', (code, signal) => {
      this.#died ??= `mediasoup driver exited (${signal ?? code}) ${stderr.trim()}`.trim();
      for (const id of [...this.#pending.keys()]) this.#settle(id, new Error(this.#died));
    });
  }

  get pid(): number {
    return this.#pid;
  }

  get ingress(): { port: number; rtcpPort: number } {
    return this.#ingress;
  }

  async #start(o: MediasoupTargetOptions): Promise<void> {
    this.#srtp = o.srtp ?? true;
    // Pinned before it spawns the worker; the worker is then moved to the SFU core.
    pinProcess(this.#child.pid!, o.driverCore);
    const ready = await new Promise<Extract<DriverReply, { type: 'ready' }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('mediasoup worker did not start in time')), START_TIMEOUT_MS);
      const onMessage = (m: DriverReply) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          this.#child.off('message', onMessage);
          resolve(m);
        } else if (m.type === 'error' && m.id === undefined) {
          clearTimeout(timer);
          reject(new Error(`mediasoup: ${m.message}`));
        }
      };
      this.#child.on('message', onMessage);
      this.#child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(this.#died ?? 'mediasoup driver exited'));
      });
      this.#send({ type: 'start', workerBin: o.workerBin, deadlineSec: o.deadlineSec, srtp: this.#srtp });
    });
    this.#pid = ready.workerPid;
    this.#ingress = { port: ready.port, rtcpPort: ready.rtcpPort };
    this.#version = ready.version;
    pinProcess(this.#pid, o.sfuCore);
    this.#pinning = { worker: allowedCpus(this.#pid), driver: allowedCpus(this.#child.pid!) };
  }

  addViewers(ports: readonly number[]): Promise<void> {
    if (this.#died) return Promise.reject(new Error(this.#died));
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => this.#settle(id, new Error(`adding ${ports.length} mediasoup viewers timed out`)),
        5000 + ports.length * ADD_TIMEOUT_MS_PER_VIEWER,
      );
      this.#pending.set(id, {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.#send({ type: 'add', id, ports: [...ports] });
    });
  }

  #settle(id: number, err?: Error): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    if (err) p.reject(err);
    else p.resolve();
  }

  #send(m: DriverRequest): void {
    if (this.#child.connected) this.#child.send(m);
  }

  info(): Record<string, unknown> {
    return {
      version: this.#version,
      workerPid: this.#pid,
      cpusAllowed: this.#pinning,
      viewer: `PlainTransport (rtcpMux, ${this.#srtp ? 'SRTP AES_CM_128_HMAC_SHA1_80' : 'plain RTP'}) + simple consumer, VP8, no header extensions, no NACK`,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#send({ type: 'close' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    // The worker exits with its channel; make sure of it (and that the pid is still ours).
    if (this.#pid && processName(this.#pid) === 'mediasoup-work') {
      try {
        process.kill(this.#pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
