import { spawn, type ChildProcess } from 'node:child_process';
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
  /** Start it again on the same port, empty (no persistence). */
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

/** A private redis-server on a free loopback port, without persistence. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
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
