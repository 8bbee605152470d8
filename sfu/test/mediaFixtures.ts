import type { types } from 'mediasoup';
import { expect } from 'vitest';
import { defaultWorkerBin } from '@cascade/config';
import { silentLogger } from '@cascade/protocol';
import { loadMediasoup } from '../src/loadMediasoup.js';
import { WorkerPool } from '../src/WorkerPool.js';

/** mediasoup with the worker scripts/setup.sh built, as every part of Cascade loads it. */
export const mediasoup = () => loadMediasoup(defaultWorkerBin(process.env));

/** Every worker process a pool of these tests started, replacements included. */
const spawned = new WeakMap<WorkerPool, Set<number>>();

/** A pool of real workers on a port range of its own (these tests run one file at a time). */
export async function startPool(numWorkers = 1, ports = { min: 47300, max: 47399 }): Promise<WorkerPool> {
  return trackPool(await WorkerPool.create(await mediasoup(), { numWorkers, logLevel: 'error', rtcMinPort: ports.min, rtcMaxPort: ports.max }, { logger: silentLogger }));
}

/** Remember the worker processes of `pool` (a MediaNode's too), for closePool(). */
export function trackPool(pool: WorkerPool): WorkerPool {
  const pids = new Set(pool.workers.map((w) => w.pid));
  pool.observer.on('newworker', (w) => pids.add(w.pid));
  spawned.set(pool, pids);
  return pool;
}

/** Whether the process `pid` still exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Close the pool (again, if a test did) and wait until every worker process it started is gone, so that no test leaks one. */
export async function closePool(pool: WorkerPool): Promise<void> {
  const pids = [...(spawned.get(pool) ?? pool.workers.map((w) => w.pid))];
  pool.close();
  await expect.poll(() => pids.filter(alive), { timeout: 10_000, interval: 50 }).toEqual([]);
}

/** Kill a worker as the OS would (SIGKILL): mediasoup reports it as died. */
export function killWorker(worker: types.Worker): void {
  process.kill(worker.pid, 'SIGKILL');
}

/** An Opus producer on `router`, fed by nobody (a source is all these tests need). */
export async function opusProducer(router: types.Router): Promise<types.Producer> {
  const transport = await router.createPlainTransport({ listenIp: { ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
  return transport.produce({
    kind: 'audio',
    rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 11110000 + Math.floor(Math.random() * 9999) }] },
  });
}

/** A VP8 simulcast producer of `layers` encodings on `router`, fed by nobody. */
export async function vp8SimulcastProducer(router: types.Router, layers: number): Promise<types.Producer> {
  const transport = await router.createPlainTransport({ listenIp: { ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
  const base = 22220000 + Math.floor(Math.random() * 9999) * 10;
  return transport.produce({
    kind: 'video',
    rtpParameters: {
      codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }],
      encodings: Array.from({ length: layers }, (_, i) => ({ ssrc: base + i, scalabilityMode: 'L1T3' })),
    },
  });
}
