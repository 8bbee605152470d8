import type { types } from 'mediasoup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@cascade/protocol';
import { defaultWorkerBin } from '@cascade/config';
import { IntegrityChannel, LocalStream, WorkerPool, loadMediasoup } from '@cascade/sfu';
import { IntegrityForwarder } from '../src/IntegrityForwarder.js';

/**
 * A relay passing its parent's digest channel on, with a real worker: the parent's channel is a
 * data producer the test sends on; what the relay sends on is what a viewer's data consumer of
 * the relay's own channel receives.
 */
let pool: WorkerPool;
beforeAll(async () => {
  pool = await WorkerPool.create(await loadMediasoup(defaultWorkerBin(process.env)), { numWorkers: 1, logLevel: 'warn', rtcMinPort: 47300, rtcMaxPort: 47399 }, { logger: silentLogger });
});
afterAll(() => pool?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('IntegrityForwarder', () => {
  it('a parent channel that goes quiet (stuck on a lossy link) is asked around: what the parent sent lately goes on, once each, again while it stays stuck', async () => {
    const stream = new LocalStream(pool, { id: 'forward1', consumersPerRouter: 100, depth: 1, state: 'live', title: '', createdAt: Date.now() }, { logger: silentLogger });
    const router = await stream.router.primary();
    const parentSide = await router.createDirectTransport();
    const source = await parentSide.produceData({ label: 'cascade-integrity' });
    const asked: number[] = [];
    // The parent's last second: what came on the channel and two batches that did not.
    const missed = async () => {
      asked.push(Date.now());
      return [b64('batch-1'), b64('batch-2'), b64('batch-3')];
    };
    const forwarder = new IntegrityForwarder(stream, { logger: silentLogger });
    const viewerSide = await router.createDirectTransport();
    const got: string[] = [];
    viewerSide.observer.on('newdataconsumer', (dc: types.DataConsumer) => dc.on('message', (m: Buffer) => got.push(m.toString())));
    await IntegrityChannel.of(stream, { logger: silentLogger }).consumeOn(viewerSide, router);
    await forwarder.follow(source, missed);
    source.send(Buffer.from('batch-1'));
    await sleep(150);
    // The first message asks once (the batches sent while the pipe was set up).
    expect(asked).toHaveLength(1);
    expect(got).toEqual(['batch-1', 'batch-2', 'batch-3']);
    // Batches every 100 ms: none is asked for.
    for (let i = 4; i < 8; i++) {
      source.send(Buffer.from(`batch-${i}`));
      await sleep(100);
    }
    expect(asked).toHaveLength(1);
    // Quiet for 1.2 s: asked after 300 ms, then every 500 ms; nothing sent twice.
    await sleep(1200);
    expect(asked.length).toBeGreaterThanOrEqual(2);
    expect(asked.length).toBeLessThanOrEqual(3);
    expect(got).toEqual(['batch-1', 'batch-2', 'batch-3', 'batch-4', 'batch-5', 'batch-6', 'batch-7']);
    forwarder.close();
    const after = asked.length;
    await sleep(700);
    expect(asked).toHaveLength(after);
    stream.close();
  });
});
