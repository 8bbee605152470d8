import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidStateError, silentLogger } from '@cascade/protocol';
import { StreamRouter } from '../src/StreamRouter.js';
import type { WorkerPool } from '../src/WorkerPool.js';
import { closePool, killWorker, opusProducer, startPool } from './mediaFixtures.js';

describe('StreamRouter', () => {
  let pool: WorkerPool | undefined;
  afterEach(async () => {
    if (pool) await closePool(pool);
    pool = undefined;
  });
  const make = (consumersPerRouter = 2) => new StreamRouter(pool!, { streamId: 's1', consumersPerRouter }, { logger: silentLogger });

  it('primary() creates one router, however many ask at once', async () => {
    pool = await startPool(1);
    const sr = make();
    const newRouter = vi.fn();
    sr.observer.on('newrouter', newRouter);
    const [a, b] = await Promise.all([sr.primary(), sr.primary()]);
    expect(a).toBe(b);
    expect(newRouter).toHaveBeenCalledTimes(1);
    expect(sr.routers).toEqual([a]);
  });

  it('close() twice emits one observer close and closes its routers', async () => {
    pool = await startPool(1);
    const sr = make();
    const router = await sr.primary();
    const onClose = vi.fn();
    sr.observer.on('close', onClose);
    sr.close();
    sr.close();
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(router.closed).toBe(true);
    expect(sr.routers).toEqual([]);
  });

  it('use after close rejects with InvalidStateError', async () => {
    pool = await startPool(1);
    const sr = make();
    sr.close();
    await expect(sr.primary()).rejects.toBeInstanceOf(InvalidStateError);
    await expect(sr.routerNumbering([])).rejects.toBeInstanceOf(InvalidStateError);
  });

  it('a full router spills viewers to a router on another worker, fed by a pipe that keeps the producer id', async () => {
    pool = await startPool(2);
    const sr = make(1);
    const primary = await sr.primary();
    const producer = await opusProducer(primary);
    sr.addConsumer(await sr.routerForConsumer(), 1);
    const second = await sr.routerForConsumer();
    expect(second).not.toBe(primary);
    expect(second.appData.worker).not.toBe(primary.appData.worker);
    expect(await sr.ensureProducer(second, producer)).toBe(producer.id);
    expect(second.canConsume({ producerId: producer.id, rtpCapabilities: second.rtpCapabilities })).toBe(true);
  });

  it("the death of the worker under it closes the primary router; the next primary() is on a live worker", async () => {
    pool = await startPool(1);
    const sr = make();
    const first = await sr.primary();
    const died = new Promise((r) => pool!.once('workerdied', r));
    killWorker(pool.workers[0]!);
    await died;
    expect(first.closed).toBe(true);
    const next = await sr.primary();
    expect(next).not.toBe(first);
    expect(next.closed).toBe(false);
  });
});
