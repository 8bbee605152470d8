import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '@cascade/protocol';
import { LocalStream } from '../src/LocalStream.js';
import type { WorkerPool } from '../src/WorkerPool.js';
import { LayeredPipeConsumer } from '../src/layers/layeredPipe.js';
import { bandwidthManaged } from '../src/layers/ViewerLayers.js';
import { closePool, opusProducer, startPool, vp8SimulcastProducer } from './mediaFixtures.js';

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

  it("is ready for a new parent's video once every viewer setting up a new video consumer is done, or after the wait", async () => {
    pool = await startPool(1);
    const s = make();
    let ready = false;
    // Nobody setting up: at once.
    await s.whenViewersReady(10_000);
    const a = s.viewerVideoPending();
    const b = s.viewerVideoPending();
    const waiting = s.whenViewersReady(10_000).then(() => (ready = true));
    a();
    a(); // twice: counted once
    await new Promise((r) => setTimeout(r, 20));
    expect(ready).toBe(false);
    b();
    await waiting;
    expect(ready).toBe(true);
    // With a pause to settle: a viewer starting to set up during it is waited for too.
    const first = s.viewerVideoPending();
    let settled = false;
    const settling = s.whenViewersReady(10_000, 60).then(() => (settled = true));
    first();
    await new Promise((r) => setTimeout(r, 20));
    const late = s.viewerVideoPending();
    await new Promise((r) => setTimeout(r, 80));
    expect(settled).toBe(false);
    late();
    await settling;
    // The pause counts from the call: a viewer ready after it is over is not held for another.
    const slow = s.viewerVideoPending();
    let after = false;
    const afterPause = s.whenViewersReady(10_000, 60).then(() => (after = true));
    await new Promise((r) => setTimeout(r, 100));
    slow();
    await new Promise((r) => setImmediate(r));
    expect(after).toBe(true);
    await afterPause;
    // A viewer that never resumes holds nobody beyond the wait (this resolves).
    s.viewerVideoPending();
    await s.whenViewersReady(100);
    // Closing the stream ends the wait.
    const c = make();
    c.viewerVideoPending();
    const closing = c.whenViewersReady(60_000);
    c.close();
    await closing;
  });

  it("while its sources are stale (a relay's parent lost), a subscriber waits for the new video source, or until the deadline", async () => {
    pool = await startPool(1);
    const s = make();
    const router = await s.router.primary();
    s.setSource(await vp8SimulcastProducer(router, 3));
    // Fresh: at once.
    await s.whenSourcesFresh();
    s.markSourcesStale(5000);
    let fresh = false;
    const waiting = s.whenSourcesFresh().then(() => (fresh = true));
    // A new audio source is not what it waits for.
    s.setSource(await opusProducer(router));
    await new Promise((r) => setTimeout(r, 50));
    expect(fresh).toBe(false);
    const next = await vp8SimulcastProducer(router, 3);
    s.setSource(next);
    await waiting;
    expect(s.sources).toContain(next);
    // Fresh again: at once. Stale with no new source: at the deadline.
    await s.whenSourcesFresh();
    s.markSourcesStale(150);
    const from = Date.now();
    await s.whenSourcesFresh();
    expect(Date.now() - from).toBeGreaterThanOrEqual(140);
    // Closing the stream ends the wait.
    s.markSourcesStale(10_000);
    const closing = s.whenSourcesFresh();
    s.close();
    await closing;
  });

  it('lets the viewers ready for a first key frame go together: those that began to wait later go when the first one does', async () => {
    pool = await startPool(1);
    const s = make();
    const slow = s.viewerVideoPending();
    const first = s.whenViewersReadyTogether(150);
    await new Promise((r) => setTimeout(r, 100));
    // Ready 100 ms after the first: it goes with the first, not after a wait of its own.
    let second = false;
    void s.whenViewersReadyTogether(150).then(() => (second = true));
    await first;
    await new Promise((r) => setImmediate(r));
    expect(second).toBe(true);
    // Once they went, a viewer ready later waits anew (for the one still setting up, here up to its own 150 ms).
    let third = false;
    const thirdWait = s.whenViewersReadyTogether(150).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(third).toBe(false);
    slow();
    await thirdWait;
    expect(third).toBe(true);
  });
});

describe('LayeredPipeConsumer', () => {
  let pool: WorkerPool | undefined;
  afterEach(async () => {
    if (pool) await closePool(pool);
    pool = undefined;
  });

  it('created with hold sends no layer, the lowest included, until release(); setMax() meanwhile only records the max', async () => {
    pool = await startPool(1);
    const s = new LocalStream(pool, { id: 's2', consumersPerRouter: 100, depth: 0, state: 'live', title: 'T', createdAt: 1 }, { logger: silentLogger });
    const router = await s.router.primary();
    const producer = await vp8SimulcastProducer(router, 3);
    const pipe = await router.createPipeTransport({ listenIp: { ip: '127.0.0.1' } });
    const other = await router.createPipeTransport({ listenIp: { ip: '127.0.0.1' } });
    await pipe.connect({ ip: '127.0.0.1', port: other.tuple.localPort });
    const paused = (l: LayeredPipeConsumer) => l.consumers.map((c) => c.paused);

    const held = await LayeredPipeConsumer.create(pipe, router, { producerId: producer.id, layers: 3, maxSpatialLayer: 1, hold: true });
    expect(held.held).toBe(true);
    expect(paused(held)).toEqual([true, true, true]);
    await held.setMax(2);
    expect(paused(held)).toEqual([true, true, true]);
    await held.release();
    expect(held.held).toBe(false);
    expect(paused(held)).toEqual([false, false, false]);
    await held.setMax(0);
    expect(paused(held)).toEqual([false, true, true]);

    // Without hold, as before: the lowest layer and those up to the max flow at once.
    const open = await LayeredPipeConsumer.create(pipe, router, { producerId: producer.id, layers: 3, maxSpatialLayer: 1 });
    expect(paused(open)).toEqual([false, false, true]);
    await open.release();
    expect(paused(open)).toEqual([false, false, true]);
    s.close();
  });
});

describe('bandwidthManaged', () => {
  let pool: WorkerPool | undefined;
  afterEach(async () => {
    if (pool) await closePool(pool);
    pool = undefined;
  });

  it("tells a browser's consumer (transport-cc) from one whose client estimates no bandwidth, on consumers mediasoup made", async () => {
    pool = await startPool(1);
    const s = new LocalStream(pool, { id: 's3', consumersPerRouter: 100, depth: 0, state: 'live', title: 'T', createdAt: 1 }, { logger: silentLogger });
    const router = await s.router.primary();
    const producer = await vp8SimulcastProducer(router, 3);
    const transport = await router.createWebRtcTransport({ listenIps: [{ ip: '127.0.0.1' }] });
    const browser = router.rtpCapabilities;
    const noEstimate = {
      ...browser,
      codecs: (browser.codecs ?? []).map((c) => ({ ...c, rtcpFeedback: (c.rtcpFeedback ?? []).filter((fb) => fb.type !== 'transport-cc' && fb.type !== 'goog-remb') })),
    };
    const managed = await transport.consume({ producerId: producer.id, rtpCapabilities: browser, paused: true });
    const unmanaged = await transport.consume({ producerId: producer.id, rtpCapabilities: noEstimate, paused: true });
    expect(bandwidthManaged(managed.rtpParameters)).toBe(true);
    expect(bandwidthManaged(unmanaged.rtpParameters)).toBe(false);
    s.close();
  });
});
