import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '@cascade/protocol';
import { LocalStream } from '../src/LocalStream.js';
import type { WorkerPool } from '../src/WorkerPool.js';
import { closePool, opusProducer, startPool } from './mediaFixtures.js';

describe('LocalStream', () => {
  let pool: WorkerPool | undefined;
  afterEach(async () => {
    if (pool) await closePool(pool);
    pool = undefined;
  });
  const make = () =>
    new LocalStream(pool!, { id: 's1', consumersPerRouter: 100, depth: 0, state: 'live', title: 'T', createdAt: 1 }, { logger: silentLogger });

  it('close() twice emits one @close (for its node) and one observer close, and closes its routers', async () => {
    pool = await startPool(1);
    const s = make();
    const router = await s.router.primary();
    const atClose = vi.fn();
    const onClose = vi.fn();
    s.on('@close', atClose);
    s.observer.on('close', onClose);
    s.close();
    s.close();
    expect(atClose).toHaveBeenCalledTimes(1);
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(s.closed).toBe(true);
    expect(s.router.closed).toBe(true);
    expect(router.closed).toBe(true);
  });

  it('a source given after close is closed at once; state and depth no longer change', async () => {
    pool = await startPool(1);
    const s = make();
    const producer = await opusProducer(await s.router.primary());
    s.close();
    const changes = vi.fn();
    s.on('statechange', changes);
    s.on('depthchange', changes);
    s.setSource(producer);
    s.setState('ended');
    s.setDepth(3);
    expect(producer.closed).toBe(true);
    expect(s.sources).toEqual([]);
    expect(changes).not.toHaveBeenCalled();
  });

  it('a new source of a kind is announced before the one it replaces closes (make-before-break)', async () => {
    pool = await startPool(1);
    const s = make();
    const router = await s.router.primary();
    const first = await opusProducer(router);
    const second = await opusProducer(router);
    s.setSource(first);
    const firstOpenWhenAnnounced: boolean[] = [];
    s.on('sourceadd', () => firstOpenWhenAnnounced.push(!first.closed));
    s.setSource(second);
    expect(firstOpenWhenAnnounced).toEqual([true]);
    expect(first.closed).toBe(true);
    expect(s.sources).toEqual([second]);
  });

  it('a source that closes on its own is forgotten', async () => {
    pool = await startPool(1);
    const s = make();
    const producer = await opusProducer(await s.router.primary());
    s.setSource(producer);
    producer.close();
    expect(s.sources).toEqual([]);
  });

  it('is idle once its last viewer and child are gone, not before', async () => {
    pool = await startPool(1);
    const s = make();
    const idle = vi.fn();
    s.on('idle', idle);
    s.addViewer('v1');
    s.addChild('p1', 'relayA');
    s.addChild('p2', 'relayA');
    expect(s.childCount).toBe(1);
    s.removeUser('viewers', 'v1');
    s.removeUser('children', 'p1');
    expect(idle).not.toHaveBeenCalled();
    s.removeUser('children', 'p2');
    expect(idle).toHaveBeenCalledTimes(1);
    s.removeUser('children', 'p2');
    expect(idle).toHaveBeenCalledTimes(1);
  });
});
