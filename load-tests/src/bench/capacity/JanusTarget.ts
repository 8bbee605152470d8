import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { allowedCpus, childPids, processName } from './procStat.js';
import { srtpKeyForPort, type SfuTarget } from './SfuTarget.js';

export interface JanusTargetOptions {
  /** Core Janus (all its threads) is pinned to. */
  core: number;
  /** Private folder for its configuration (removed by the caller). */
  dir: string;
  /** Janus is killed by coreutils `timeout` after this long, whatever happens to us. */
  deadlineSec: number;
  /** SRTP on the forwarders (default true); false for the plain-RTP comparison. */
  srtp?: boolean;
}

/** Janus is not installed, or not in a shape we can drive. The caller falls back and warns. */
export class JanusUnavailableError extends Error {
  override readonly name = 'JanusUnavailableError';
}

const ROOM = 4242;
const PUBLISHER = 1;
const READY_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** rtp_forward requests in flight while adding viewers. */
const ADD_CONCURRENCY = 4;

/** Where Debian (and a source build) put Janus's plugins. */
function findJanus(): { bin: string; libDir: string } {
  const bin = (process.env.PATH ?? '/usr/bin:/usr/local/bin')
    .split(':')
    .map((d) => path.join(d, 'janus'))
    .find((p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  if (!bin) throw new JanusUnavailableError('janus is not installed (Debian package `janus`, in scripts/setup.sh bench)');
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
    (d) => existsSync(path.join(d, 'plugins', 'libjanus_videoroom.so')) && existsSync(path.join(d, 'transports', 'libjanus_http.so')),
  );
  if (!libDir) throw new JanusUnavailableError('janus is installed but its VideoRoom plugin or HTTP transport was not found');
  return { bin, libDir };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Janus (Debian's 1.1.x) as the peer baseline, configured from a private folder: only the
 * VideoRoom plugin and the HTTP transport on 127.0.0.1, no event handlers, logging at
 * errors only, no session timeout.
 *
 * The broadcaster feeds a *remote publisher* (`add_remote_publisher`: plain RTP on a UDP
 * port, the VideoRoom's cascading input; Janus maps SSRC 1000 to its first m-line), and each
 * viewer is an `rtp_forward` of that publisher with SRTP (srtp_suite 80,
 * AES_CM_128_HMAC_SHA1_80) to a sink port: the same job as a mediasoup consumer on an SRTP
 * PlainTransport. Each forwarder gets its own key: Janus shares one SRTP context (and one
 * encryption per packet) among forwarders with the same key, which real viewers never do. The legacy `video_port` form of
 * rtp_forward is used (Janus logs it as deprecated); the `streams` form did not find the
 * remote publisher's stream by mid in 1.1.2.
 */
export class JanusTarget implements SfuTarget {
  readonly kind = 'janus';
  #proc: ChildProcess | undefined;
  #pid = 0;
  #url = '';
  #session = 0;
  #handle = 0;
  #tx = 0;
  #ingress = { port: 0, rtcpPort: 0 };
  #viewers = 0;
  #version = '';
  #output = '';
  #closed = false;
  #exited = false;
  #cpus: string | null = null;
  #srtp = true;
  /** Kills Janus if this process exits without close(); `timeout` bounds it otherwise. */
  readonly #onExit = () => {
    try {
      if (this.#pid && processName(this.#pid) === 'janus') process.kill(this.#pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };

  static async start(o: JanusTargetOptions): Promise<JanusTarget> {
    const { bin, libDir } = findJanus();
    const t = new JanusTarget();
    try {
      await t.#start(o, bin, libDir);
    } catch (err) {
      await t.close();
      throw err;
    }
    return t;
  }

  get pid(): number {
    return this.#pid;
  }

  get ingress(): { port: number; rtcpPort: number } {
    return this.#ingress;
  }

  async #start(o: JanusTargetOptions, bin: string, libDir: string): Promise<void> {
    this.#srtp = o.srtp ?? true;
    const conf = path.join(o.dir, 'conf');
    for (const d of ['conf', 'plugins', 'transports', 'events', 'loggers']) mkdirSync(path.join(o.dir, d), { recursive: true });
    symlinkSync(path.join(libDir, 'plugins', 'libjanus_videoroom.so'), path.join(o.dir, 'plugins', 'libjanus_videoroom.so'));
    symlinkSync(path.join(libDir, 'transports', 'libjanus_http.so'), path.join(o.dir, 'transports', 'libjanus_http.so'));
    const httpPort = await freePort();
    writeFileSync(
      path.join(conf, 'janus.jcfg'),
      `general: {
  configs_folder = "${conf}"
  plugins_folder = "${path.join(o.dir, 'plugins')}"
  transports_folder = "${path.join(o.dir, 'transports')}"
  events_folder = "${path.join(o.dir, 'events')}"
  loggers_folder = "${path.join(o.dir, 'loggers')}"
  debug_level = 2
  session_timeout = 0
}
media: {}
nat: {
  nice_debug = false
  ice_enforce_list = "lo"
}
plugins: {}
transports: {}
events: { broadcast = false }
loggers: {}
`,
    );
    writeFileSync(
      path.join(conf, 'janus.transport.http.jcfg'),
      `general: {
  json = "compact"
  base_path = "/janus"
  http = true
  port = ${httpPort}
  ip = "127.0.0.1"
  https = false
}
admin: { admin_http = false }
`,
    );
    writeFileSync(path.join(conf, 'janus.plugin.videoroom.jcfg'), 'general: {\n}\n');
    // `timeout` bounds Janus's life even if this process dies; taskset execs janus, so the
    // pinned process is timeout's only child.
    const proc = spawn(
      'timeout',
      ['-k', '3', String(o.deadlineSec), 'taskset', '-c', String(o.core), bin, '-C', path.join(conf, 'janus.jcfg'), '-F', conf, '-o'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
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
    this.#url = `http://127.0.0.1:${httpPort}/janus`;

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.#exited) throw new Error(`janus exited at start: ${this.#output.trim().slice(-1500)}`);
      if (!this.#pid) {
        const child = childPids(proc.pid!)[0];
        if (child && processName(child) === 'janus') this.#pid = child;
      }
      if (this.#pid) {
        try {
          const r = await this.#post(this.#url, { janus: 'create' }, 1000);
          this.#session = (r.data as { id: number }).id;
          break;
        } catch {
          // not listening yet
        }
      }
      if (Date.now() > deadline) throw new Error(`janus did not answer on ${this.#url}: ${this.#output.trim().slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    this.#cpus = allowedCpus(this.#pid);
    const info = await fetch(`${this.#url}/info`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).then((r) => r.json() as Promise<Record<string, unknown>>);
    this.#version = String(info.version_string ?? info.version ?? '');
    const h = await this.#post(`${this.#url}/${this.#session}`, { janus: 'attach', plugin: 'janus.plugin.videoroom' });
    this.#handle = (h.data as { id: number }).id;
    await this.#message({ request: 'create', room: ROOM, publishers: 1, videocodec: 'vp8', bitrate: 0, fir_freq: 0, is_private: true }, 'created');
    const rp = await this.#message(
      {
        request: 'add_remote_publisher',
        room: ROOM,
        id: PUBLISHER,
        display: 'capacity-bench',
        iface: '127.0.0.1',
        streams: [{ type: 'video', mindex: 0, mid: '0', codec: 'vp8' }],
      },
      'success',
    );
    this.#ingress = { port: Number(rp.port), rtcpPort: Number(rp.rtcp_port) };
  }

  async #post(url: string, body: Record<string, unknown>, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Record<string, unknown>> {
    const res = await fetch(url, {
      method: 'POST',
      body: JSON.stringify({ ...body, transaction: `t${++this.#tx}` }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (json.janus === 'error') throw new Error(`janus: ${JSON.stringify(json.error)}`);
    return json;
  }

  /** A synchronous VideoRoom request; resolves with the plugin's answer. */
  async #message(body: Record<string, unknown>, expect: string): Promise<Record<string, unknown>> {
    const r = await this.#post(`${this.#url}/${this.#session}/${this.#handle}`, { janus: 'message', body });
    const data = (r.plugindata as { data?: Record<string, unknown> } | undefined)?.data ?? {};
    if (data.videoroom !== expect || data.error) throw new Error(`janus ${String(body.request)}: ${JSON.stringify(data)}`);
    return data;
  }

  async addViewers(ports: readonly number[]): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (next < ports.length) {
        const port = ports[next++]!;
        await this.#message(
          {
            request: 'rtp_forward',
            room: ROOM,
            publisher_id: PUBLISHER,
            host: '127.0.0.1',
            host_family: 'ipv4',
            video_port: port,
            ...(this.#srtp ? { srtp_suite: 80, srtp_crypto: srtpKeyForPort(port) } : {}),
          },
          'rtp_forward',
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(ADD_CONCURRENCY, ports.length) }, lane));
    this.#viewers += ports.length;
    // rtp_forward answers success even when it forwards nothing; count what Janus holds.
    const list = await this.#message({ request: 'listforwarders', room: ROOM }, 'forwarders');
    const pubs = (list.publishers ?? []) as { forwarders?: unknown[] }[];
    const held = pubs.reduce((n, p) => n + (p.forwarders?.length ?? 0), 0);
    if (held !== this.#viewers) throw new Error(`janus holds ${held} rtp forwarders, expected ${this.#viewers}`);
  }

  info(): Record<string, unknown> {
    return {
      version: this.#version,
      pid: this.#pid,
      cpusAllowed: this.#cpus,
      viewer: `VideoRoom rtp_forward (video_port, ${this.#srtp ? 'srtp_suite 80 = AES_CM_128_HMAC_SHA1_80, own key per forwarder' : 'plain RTP'}) of a remote publisher`,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const proc = this.#proc;
    if (!proc || this.#exited) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const ours = () => this.#pid && processName(this.#pid) === 'janus';
    try {
      if (ours()) process.kill(this.#pid, 'SIGTERM');
      else proc.kill('SIGTERM');
    } catch {
      // gone
    }
    const timer = setTimeout(() => {
      try {
        if (ours()) process.kill(this.#pid, 'SIGKILL');
        proc.kill('SIGKILL');
      } catch {
        // gone
      }
    }, 3000);
    await exited;
    clearTimeout(timer);
  }
}
