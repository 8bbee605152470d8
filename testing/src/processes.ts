import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TokenService } from '@cascade/controller';
import type { OperatorTokenClaims } from '@cascade/protocol';
import { freePort, getJson } from './net.js';
import { waitFor } from './wait.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TEST_SECRET = 'cascade-test-secret-0123456789';

/** Every process the harness started and has not seen exit: killed if the test run itself exits. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) {
    if (frozen.has(p)) signalTree(p.pid, 'SIGCONT');
    p.kill('SIGKILL');
  }
});
/** Processes freeze() stopped and thaw() has not resumed. */
const frozen = new Set<ChildProcess>();

export interface NodeProcess {
  /** Base URL of its HTTP/WebSocket server. */
  url: string;
  port: number;
  proc: ChildProcess;
  /** The last lines it printed (stdout and stderr), for failure messages. */
  logs: string[];
  exited: Promise<number | null>;
  /** SIGTERM (graceful) and wait for exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL: a crash, as far as everyone else can tell. */
  kill(): Promise<void>;
  /**
   * SIGSTOP the process and its mediasoup workers: a machine that froze or dropped off the
   * network (a laptop lid closing). Nothing is closed; peers hear nothing at all.
   */
  freeze(): void;
  /** SIGCONT what freeze() stopped: the machine wakes up. */
  thaw(): void;
}

/** A process and all its descendants (pids), parents first. */
function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)]).toString().trim().split('\n').filter(Boolean).map(Number);
  } catch {
    // pgrep exits 1 when there are no children
  }
  return [pid, ...children.flatMap(processTree)];
}

function signalTree(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  for (const p of processTree(pid)) {
    try {
      process.kill(p, signal);
    } catch {
      // exited meanwhile
    }
  }
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Host the harness uses to reach it (default 127.0.0.1). */
  host?: string;
  port?: number;
  args?: string[];
  /** Health condition to wait for. */
  ready?: (health: Record<string, unknown>) => boolean;
  timeoutMs?: number;
}

function spawnNode(script: string, o: SpawnOptions, env: Record<string, string>): ChildProcess {
  const args = [path.join(REPO_ROOT, script), ...(o.args ?? [])];
  const fullEnv = { ...process.env, ...env, ...o.env };
  return o.netns
    ? spawn('ip', ['netns', 'exec', o.netns, process.execPath, ...args], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function managed(script: string, o: SpawnOptions, env: Record<string, string>, port: number): Promise<NodeProcess> {
  const proc = spawnNode(script, o, env);
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const logs: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      logs.push(line);
      if (logs.length > 400) logs.shift();
      if (process.env.CASCADE_TEST_VERBOSE) process.stderr.write(`[${path.basename(script)}:${port}] ${line}\n`);
    }
  };
  proc.stdout!.on('data', collect);
  proc.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = `http://${o.host ?? '127.0.0.1'}:${port}`;
  let dead = false;
  void exited.then(() => (dead = true));
  try {
    await waitFor(
      async () => {
        if (dead) throw new Error(`process exited: ${logs.slice(-15).join('\n')}`);
        const h = await getJson<Record<string, unknown>>(`${url}/healthz`);
        return h.status === 200 && (!o.ready || o.ready(h.body));
      },
      { timeoutMs: o.timeoutMs ?? 30_000, what: `${script} on ${url}`, intervalMs: 100 },
    );
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- last output ---\n${logs.slice(-20).join('\n')}`);
  }
  return {
    url,
    port,
    proc,
    logs,
    exited,
    async stop(signal = 'SIGTERM') {
      if (!dead) proc.kill(signal);
      return exited;
    },
    async kill() {
      // A frozen process dies of SIGKILL too, but its children must not stay stopped.
      if (frozen.delete(proc) && !dead) signalTree(proc.pid, 'SIGCONT');
      if (!dead) proc.kill('SIGKILL');
      await exited;
    },
    freeze() {
      if (dead) return;
      frozen.add(proc);
      signalTree(proc.pid, 'SIGSTOP');
    },
    thaw() {
      frozen.delete(proc);
      if (!dead) signalTree(proc.pid, 'SIGCONT');
    },
  };
}

/**
 * `node server/dist/main.js` (origin + controller + demo by default) on a free port. It binds
 * loopback, as `npm start` does, unless `host` says the test reaches it from elsewhere (another
 * network namespace): then all interfaces, so that loopback keeps working too.
 */
export async function startServer(o: SpawnOptions = {}): Promise<NodeProcess> {
  const port = o.port ?? (await freePort());
  const remote = o.host !== undefined && !['127.0.0.1', 'localhost'].includes(o.host);
  return managed(
    'server/dist/main.js',
    o,
    {
      ...(remote ? { CASCADE_HTTP_HOST: '0.0.0.0' } : {}),
      CASCADE_HTTP_PORT: String(port),
      CASCADE_AUTH_SECRET: TEST_SECRET,
      CASCADE_LOG_LEVEL: 'info',
      CASCADE_MEDIASOUP_NUM_WORKERS: '1',
      // Several servers share the machine: each takes a free media port of the range.
      CASCADE_MEDIASOUP_MEDIA_PORT: '0',
    },
    port,
  );
}

/** A relay process registered with `controllerUrl` and past its reachability probe. */
export async function startRelay(o: SpawnOptions & { controllerUrl: string; token: string; id?: string; maxViewers?: number; maxChildren?: number }): Promise<NodeProcess & { nodeId: string }> {
  const port = o.port ?? (await freePort());
  const args = [
    '--controller', o.controllerUrl,
    '--token', o.token,
    '--port', String(port),
    // Several relays share the machine: each takes a free media port of the range.
    '--media-port', '0',
    ...(o.id ? ['--id', o.id] : []),
    ...(o.maxViewers !== undefined ? ['--max-viewers', String(o.maxViewers)] : []),
    ...(o.maxChildren !== undefined ? ['--max-children', String(o.maxChildren)] : []),
    ...(o.args ?? []),
  ];
  let nodeId = '';
  const p = await managed(
    'relay/dist/cli.js',
    {
      ...o,
      args,
      ready: (h) => {
        nodeId = String(h.node ?? '');
        return h.controller === 'ready';
      },
    },
    { CASCADE_LOG_LEVEL: 'info', CASCADE_MEDIASOUP_NUM_WORKERS: '1', CASCADE_RELAY_LINGER_MS: '60000', ...(o.host && o.host !== '127.0.0.1' && !o.netns ? { CASCADE_HTTP_HOST: o.host } : {}) },
    port,
  );
  return { ...p, nodeId };
}

/** An operator token, as `cascade token` would print it. */
export function issueToken(claims: OperatorTokenClaims, secret = TEST_SECRET, ttlSec = 3600): string {
  return new TokenService(secret).issue(claims, ttlSec);
}
