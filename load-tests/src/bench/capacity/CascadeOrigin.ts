import { getJson, issueToken, startServer, TEST_SECRET, waitFor, type NodeProcess } from '@cascade/testing';
import { SyntheticBroadcaster } from '../../SyntheticBroadcaster.js';
import { wallClockMs } from '../../clock.js';
import { allowedCpus, childPids, pinProcess, processName } from './procStat.js';
import type { RealTarget } from './RealTarget.js';

export interface CascadeOriginOptions {
  /** Core the origin (its Node process and its one mediasoup worker) is pinned to. */
  core: number;
  /** The audio+video clip (ensureAvClip). */
  clip: string;
  /** The broadcaster's ffmpeg stops by itself after this long. */
  deadlineSec: number;
  /** Extra CASCADE_* settings (tuning experiments). */
  env?: Record<string, string>;
}

/**
 * Cascade's origin as `npm start` runs it (server/dist/main.js: HTTP, signalling, the
 * controller, one mediasoup worker), every viewer served by the origin itself: no viewer
 * budget, one router for all consumers. The broadcaster is the load test's synthetic one
 * (ffmpeg replaying the clip, werift publishing it through the SDK), in this process.
 */
export class CascadeOrigin implements RealTarget {
  readonly kind = 'cascade';
  readonly join: RealTarget['join'];
  readonly #server: NodeProcess;
  readonly #caster: SyntheticBroadcaster;
  readonly #env: Record<string, string>;
  readonly #warnings: string[] = [];
  #closed = false;

  static async start(o: CascadeOriginOptions): Promise<CascadeOrigin> {
    const env = {
      CASCADE_LOG_LEVEL: 'warn',
      CASCADE_HTTP_HOST: '127.0.0.1',
      CASCADE_MEDIASOUP_NUM_WORKERS: '1',
      CASCADE_MEDIASOUP_LISTEN_IPS: '[{"ip":"127.0.0.1"}]',
      CASCADE_MEDIASOUP_CONSUMERS_PER_ROUTER: '100000',
      CASCADE_ORIGIN_MAX_VIEWERS: '100000',
      CASCADE_WEB_DEMO_ENABLED: 'false',
      ...o.env,
    };
    const server = await startServer({ env });
    let caster: SyntheticBroadcaster | undefined;
    try {
      const pid = server.proc.pid!;
      const workers = () => childPids(pid).filter((p) => processName(p)?.startsWith('mediasoup'));
      await waitFor(() => workers().length > 0, { what: 'the mediasoup worker', timeoutMs: 15_000 });
      for (const p of [pid, ...workers()]) pinProcess(p, o.core);
      const warnings: string[] = [];
      caster = await SyntheticBroadcaster.start(
        { url: server.url, token: issueToken({ scope: ['broadcast'], sub: 'capacity-bench' }, TEST_SECRET), clipPath: o.clip, audio: true, maxDurationSec: o.deadlineSec },
        { now: wallClockMs, warn: (m) => warnings.push(m) },
      );
      const streamId = caster.streamId;
      await waitFor(async () => (await getJson<{ state: string }>(`${server.url}/api/streams/${streamId}`)).body.state === 'live', {
        what: 'the stream to be live',
        timeoutMs: 15_000,
      });
      const t = new CascadeOrigin(server, caster, env, streamId);
      t.#warnings.push(...warnings);
      return t;
    } catch (err) {
      await caster?.stop();
      await server.stop('SIGKILL');
      throw err;
    }
  }

  private constructor(server: NodeProcess, caster: SyntheticBroadcaster, env: Record<string, string>, streamId: string) {
    this.#server = server;
    this.#caster = caster;
    this.#env = env;
    this.join = { server: 'cascade', url: server.url, streamId };
  }

  pids(): number[] {
    const pid = this.#server.proc.pid!;
    return [pid, ...childPids(pid)];
  }

  failure(): string | undefined {
    if (this.#server.proc.exitCode !== null || this.#server.proc.signalCode !== null) {
      return `the origin exited: ${this.#server.logs.slice(-5).join(' | ')}`;
    }
    return undefined;
  }

  info(): Record<string, unknown> {
    const pids = this.pids();
    return {
      process: 'node server/dist/main.js (origin + controller, in-process store) with one mediasoup 3.12.16 worker',
      settings: this.#env,
      cpusAllowed: pids.map((p) => `${processName(p)}:${allowedCpus(p)}`),
      broadcaster: 'ffmpeg replaying the clip, forwarded by werift through the SDK (audio + video producers)',
      broadcasterNotes: this.#warnings,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#caster.stop();
    // SIGKILL: a graceful stop waits for a thousand viewers to leave, which is not what is measured.
    await this.#server.kill();
  }
}
