import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidStateError } from '@cascade/protocol';
import type { WorkerPool } from '../src/WorkerPool.js';
import { alive, closePool, killWorker, startPool } from './mediaFixtures.js';

describe('WorkerPool', () => {
  let pool: WorkerPool | undefined;
  afterEach(async () => {
    if (pool) await closePool(pool);
    pool = undefined;
  });

  it('create() resolves once numWorkers workers run', async () => {
    pool = await startPool(2);
    expect(pool.workers).toHaveLength(2);
    for (const w of pool.workers) expect(alive(w.pid)).toBe(true);
  });

  it('close() twice emits one observer close and ends every worker process', async () => {
    pool = await startPool(2);
    const onClose = vi.fn();
    pool.observer.on('close', onClose);
    const pids = pool.workers.map((w) => w.pid);
    pool.close();
    pool.close();
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(pool.closed).toBe(true);
    expect(pool.workers).toEqual([]);
    await expect.poll(() => pids.filter(alive), { timeout: 10_000 }).toEqual([]);
  });

  it('leastLoaded() after close throws InvalidStateError', async () => {
    pool = await startPool(1);
    pool.close();
    expect(() => pool!.leastLoaded()).toThrow(InvalidStateError);
  });

  it('leastLoaded() follows the load its owners report, and skips the workers it is told to', async () => {
    pool = await startPool(2);
    const [a, b] = pool.workers;
    pool.addLoad(a!, 3);
    expect(pool.leastLoaded()).toBe(b);
    pool.addLoad(b!, 5);
    expect(pool.leastLoaded()).toBe(a);
    expect(pool.leastLoaded(new Set([a!]))).toBe(b);
  });

  it('a worker that dies is replaced in its slot: workerdied(dead, replacement), and the pool keeps its size', async () => {
    pool = await startPool(2);
    const died = vi.fn();
    pool.on('workerdied', died);
    const victim = pool.workers[0]!;
    const survivor = pool.workers[1]!;
    killWorker(victim);
    await expect.poll(() => died.mock.calls.length, { timeout: 20_000 }).toBe(1);
    const [dead, replacement] = died.mock.calls[0]!;
    expect(dead).toBe(victim);
    expect(replacement).toBeDefined();
    expect(replacement).not.toBe(victim);
    expect(pool.workers).toHaveLength(2);
    expect(pool.workers).toContain(survivor);
    expect(pool.workers).toContain(replacement);
  });
});
