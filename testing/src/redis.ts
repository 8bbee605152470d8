import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './net.js';
import { waitFor } from './wait.js';
import net from 'node:net';

export interface RedisServer {
  url: string;
  port: number;
  /** Stop the server (SIGTERM, wait for exit). */
  stop(): Promise<void>;
  /** Kill it hard (SIGKILL): what a crash looks like. */
  kill(): Promise<void>;
  /** Start it again on the same port: empty, or with its data when started with `persist`. */
  restart(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * A private redis-server on a free loopback port, without persistence; with `persist`, an
 * append-only file fsynced on every write in a fresh temporary directory (what a deployment
 * that keeps its ledger runs), so that even a kill -9 loses no acknowledged write.
 */
export async function startRedis(options: { persist?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort();
  const persistence = options.persist
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', mkdtempSync(path.join(tmpdir(), 'cascade-redis-'))]
    : ['--appendonly', 'no'];
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--protected-mode', 'no'], {
      stdio: 'ignore',
    });
    proc.once('error', () => {});
    await waitFor(() => ping(port), { timeoutMs: 10_000, what: 'redis-server to answer' });
  };
  const exited = () =>
    new Promise<void>((resolve) => {
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
    });
  await launch();
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      proc?.kill('SIGTERM');
      await exited();
    },
    async kill() {
      proc?.kill('SIGKILL');
      await exited();
    },
    async restart() {
      await server.kill();
      await launch();
    },
  };
  return server;
}
