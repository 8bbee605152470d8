import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LayerDemand } from '../src/layers/LayerDemand.js';
import { LayerGuard } from '../src/layers/LayerGuard.js';
import { pipeLayerCapabilities } from '../src/layers/layeredPipe.js';
import { layerCount, maxLayerFor, temporalLayers } from '../src/layers/quality.js';
import { ViewerLayers } from '../src/layers/ViewerLayers.js';

describe('maxLayerFor()', () => {
  it('maps each quality to a spatial layer of the stream, the nearest one it has', () => {
    expect([maxLayerFor('auto', 3), maxLayerFor('high', 3), maxLayerFor('medium', 3), maxLayerFor('low', 3)]).toEqual([2, 2, 1, 0]);
    // Two layers: medium is the upper one; one layer: every quality is that layer.
    expect([maxLayerFor('high', 2), maxLayerFor('medium', 2), maxLayerFor('low', 2)]).toEqual([1, 1, 0]);
    expect([maxLayerFor('high', 1), maxLayerFor('medium', 1), maxLayerFor('low', 1)]).toEqual([0, 0, 0]);
    expect(maxLayerFor('audio', 3)).toBeUndefined();
  });
});

describe('layerCount() and temporalLayers()', () => {
  it('counts simulcast encodings of video, none for audio', () => {
    expect(layerCount({ kind: 'video', rtpParameters: { codecs: [], encodings: [{}, {}, {}] } })).toBe(3);
    expect(layerCount({ kind: 'video', rtpParameters: { codecs: [] } })).toBe(1);
    expect(layerCount({ kind: 'audio', rtpParameters: { codecs: [], encodings: [{}] } })).toBe(0);
  });
  it('reads temporal layers from a scalability mode', () => {
    expect(temporalLayers({ scalabilityMode: 'L3T3' })).toBe(3);
    expect(temporalLayers({ scalabilityMode: 'L1T2' })).toBe(2);
    expect(temporalLayers({})).toBe(1);
    expect(temporalLayers(undefined)).toBe(1);
  });
});

describe('pipeLayerCapabilities()', () => {
  it('drops bandwidth estimation and MID, keeps the rest', () => {
    const caps = pipeLayerCapabilities({
      codecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'transport-cc' }, { type: 'goog-remb' }, { type: 'nack', parameter: 'pli' }] }],
      headerExtensions: [
        { kind: 'video', uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', preferredId: 1 },
        { kind: 'video', uri: 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01', preferredId: 5 },
        { kind: 'video', uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time', preferredId: 4 },
        { kind: 'video', uri: 'urn:3gpp:video-orientation', preferredId: 11 },
      ],
    });
    expect(caps.codecs![0]!.rtcpFeedback).toEqual([{ type: 'nack' }, { type: 'nack', parameter: 'pli' }]);
    expect(caps.headerExtensions!.map((e) => e.uri)).toEqual(['urn:3gpp:video-orientation']);
  });
});

describe('LayerDemand', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const demand = (layers = 3) => {
    const d = new LayerDemand(() => layers, { decayMs: 5000 });
    const changes: number[] = [];
    d.on('change', (v) => changes.push(v));
    return { d, changes };
  };

  it('wants only the lowest layer with nobody below, and everything for an auto viewer at once', () => {
    const { d, changes } = demand();
    expect(d.value).toBe(0);
    d.setViewer('v1', 'auto');
    expect(d.value).toBe(3);
    expect(changes).toEqual([3]);
  });

  it('takes the highest wish of viewers (by their quality) and children (by what they asked)', () => {
    const { d } = demand();
    d.setViewer('v1', 'low');
    expect(d.value).toBe(0);
    d.setViewer('v2', 'medium');
    expect(d.value).toBe(1);
    d.setChild('c1', 2);
    expect(d.value).toBe(2);
    d.setViewer('v3', 'audio');
    expect(d.value).toBe(2);
  });

  it('lowers only after the lower wish held for decayMs (a viewer flipping between qualities costs nothing upstream)', () => {
    const { d, changes } = demand();
    d.setViewer('v1', 'high');
    d.setViewer('v1', 'low');
    vi.advanceTimersByTime(4000);
    expect(d.value).toBe(3);
    d.setViewer('v1', 'high');
    vi.advanceTimersByTime(10_000);
    expect(d.value).toBe(3);
    d.setViewer('v1', undefined);
    vi.advanceTimersByTime(5000);
    expect(d.value).toBe(0);
    expect(changes).toEqual([3, 0]);
  });

  it("recomputes 'medium' when the stream's layer count changes", () => {
    let layers = 3;
    const d = new LayerDemand(() => layers);
    d.setViewer('v', 'medium');
    expect(d.value).toBe(1);
    layers = 4;
    d.update();
    expect(d.value).toBe(2);
  });

  it('clamps what a child asks to the layers there can be', () => {
    const { d } = demand();
    d.setChild('c', 99);
    expect(d.value).toBe(3);
    d.setChild('c', -5);
    vi.advanceTimersByTime(5000);
    expect(d.value).toBe(0);
  });

  it('close() twice is fine and stops every timer and event', () => {
    const { d, changes } = demand();
    d.setViewer('v', 'auto');
    d.setViewer('v', 'low');
    d.close();
    d.close();
    vi.advanceTimersByTime(10_000);
    d.setViewer('v', 'auto');
    expect(changes).toEqual([3]);
  });
});

describe('LayerGuard', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const guard = () => {
    let caps = 0;
    const g = new LayerGuard(3, () => caps++, { frameRateGraceMs: 4000, lossGraceMs: 2000, retryAfterMs: 20_000 });
    return { g, caps: () => caps };
  };

  it('a viewer held below full frame rate on a higher layer goes one layer down, then tries again later and later', () => {
    const { g, caps } = guard();
    g.layers({ spatialLayer: 1, temporalLayer: 1 });
    vi.advanceTimersByTime(3900);
    expect(g.cap).toBeUndefined();
    vi.advanceTimersByTime(200);
    expect(g.cap).toBe(0);
    expect(caps()).toBe(1);
    vi.advanceTimersByTime(20_000);
    expect(g.cap).toBeUndefined();
    // Back on the higher layer, still short of its frame rate: down again, for twice as long.
    g.layers({ spatialLayer: 1, temporalLayer: 0 });
    vi.advanceTimersByTime(4100);
    expect(g.cap).toBe(0);
    vi.advanceTimersByTime(20_000);
    expect(g.cap).toBe(0);
    vi.advanceTimersByTime(20_000);
    expect(g.cap).toBeUndefined();
  });

  it('a full frame rate, the lowest layer, or a recovery within the grace period changes nothing', () => {
    const { g, caps } = guard();
    g.layers({ spatialLayer: 2, temporalLayer: 2 });
    vi.advanceTimersByTime(10_000);
    g.layers({ spatialLayer: 0, temporalLayer: 0 });
    vi.advanceTimersByTime(10_000);
    g.layers({ spatialLayer: 2, temporalLayer: 1 });
    vi.advanceTimersByTime(3000);
    g.layers({ spatialLayer: 2, temporalLayer: 2 });
    vi.advanceTimersByTime(10_000);
    expect(caps()).toBe(0);
    expect(g.cap).toBeUndefined();
  });

  it('a viewer losing packets on a higher layer (no bandwidth estimate) goes one layer down', () => {
    const { g } = guard();
    g.layers({ spatialLayer: 2, temporalLayer: 2 });
    g.score(4);
    vi.advanceTimersByTime(2100);
    expect(g.cap).toBe(1);
  });

  it("the viewer's own choice clears the cap and its backoff; close() stops the timers", () => {
    const { g, caps } = guard();
    g.layers({ spatialLayer: 2, temporalLayer: 0 });
    vi.advanceTimersByTime(4100);
    expect(g.cap).toBe(1);
    g.reset();
    expect(g.cap).toBeUndefined();
    g.close();
    vi.advanceTimersByTime(60_000);
    expect(caps()).toBe(1);
  });
});

describe('ViewerLayers', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** A viewer on a 3-layer stream with a fake video consumer; `raised` records each preferred layer asked for, with when. */
  const viewer = () => {
    const raised: { spatialLayer: number; temporalLayer?: number; at: number }[] = [];
    const consumer = Object.assign(new EventEmitter(), {
      id: 'c1',
      kind: 'video',
      type: 'simulcast',
      closed: false,
      observer: new EventEmitter(),
      rtpParameters: { encodings: [{ scalabilityMode: 'L1T3' }] },
      preferredLayers: { spatialLayer: 0 } as { spatialLayer: number; temporalLayer?: number } | undefined,
      async setPreferredLayers(l: { spatialLayer: number; temporalLayer?: number }) {
        consumer.preferredLayers = l;
        raised.push({ ...l, at: Date.now() });
      },
      async requestKeyFrame() {
        asked.push(Date.now());
      },
    });
    const asked: number[] = [];
    const session = { id: 's1', notify: () => {}, log: { debug: () => {}, warn: () => {} } };
    /** `viewersSettingUp`: other viewers of the stream setting up their video here (see LocalStream.viewerVideoPending). */
    const stream = { layers: { setViewer: () => {} }, videoLayers: 3, viewersSettingUp: 0 };
    const layers = new ViewerLayers(session as never, stream as never, { addVideo: async () => {}, removeVideo: () => {} });
    layers.adopt(consumer as never, { kind: 'video', rtpParameters: { encodings: [{}, {}, {}] } } as never);
    return { layers, consumer, raised, asked, stream };
  };

  it('the first raise is put off while other viewers here set up their video, and comes 350 ms after they are done (their first key frames go out then); 1.5 s after the first picture at most', async () => {
    const { layers, consumer, raised, stream } = viewer();
    const firstPicture = Date.now();
    consumer.emit('layerschange', { spatialLayer: 0, temporalLayer: 0 });
    stream.viewersSettingUp = 2;
    await vi.advanceTimersByTimeAsync(500);
    expect(raised).toEqual([]);
    stream.viewersSettingUp = 0;
    await vi.advanceTimersByTimeAsync(300);
    expect(raised).toEqual([]);
    await vi.advanceTimersByTimeAsync(150);
    expect(raised).toHaveLength(1);
    expect(raised[0]!.at - firstPicture).toBeGreaterThanOrEqual(500 + 350);
    layers.close();

    // Viewers that keep coming (a join storm) put it off 1.5 s at most.
    const busy = viewer();
    const at = Date.now();
    busy.consumer.emit('layerschange', { spatialLayer: 0, temporalLayer: 0 });
    busy.stream.viewersSettingUp = 5;
    await vi.advanceTimersByTimeAsync(1400);
    expect(busy.raised).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    expect(busy.raised.map((r) => r.at - at)).toEqual([1500]);
    busy.layers.close();
  });

  it('on resume, asks for a key frame again every 400 ms until the first picture (Chrome ignores a request within 300 ms of its last key frame, mediasoup repeats only after 1 s)', async () => {
    const { layers, consumer, asked } = viewer();
    const t0 = Date.now();
    layers.resumed(consumer as never);
    await vi.advanceTimersByTimeAsync(900);
    expect(asked.map((t) => t - t0)).toEqual([400, 800]);
    consumer.emit('layerschange', { spatialLayer: 0, temporalLayer: 0 });
    await vi.advanceTimersByTimeAsync(2000);
    expect(asked).toHaveLength(2);
    layers.close();
  });

  it("raises a new consumer to the top layer 350 ms after its first picture went out, not at once (Chrome ignores a key frame request within 300 ms of the join's own)", async () => {
    const { layers, consumer, raised } = viewer();
    const firstPicture = Date.now();
    consumer.emit('layerschange', { spatialLayer: 0, temporalLayer: 0 });
    await vi.advanceTimersByTimeAsync(300);
    expect(raised).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(raised).toEqual([{ spatialLayer: 2, at: firstPicture + 350 }]);
    // Later layer changes raise nothing more (mediasoup moves it within what is allowed).
    consumer.emit('layerschange', { spatialLayer: 2, temporalLayer: 2 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(raised).toHaveLength(1);
    layers.close();
  });

  it('on resume, toggles the preferred temporal layer every 100 ms until the first layer comes, then puts it back (mediasoup shares out a bandwidth estimate only on a change)', async () => {
    const { layers, consumer, raised } = viewer();
    const t0 = Date.now();
    layers.resumed(consumer as never);
    await vi.advanceTimersByTimeAsync(250);
    expect(raised).toEqual([
      { spatialLayer: 0, temporalLayer: 0, at: t0 },
      { spatialLayer: 0, at: t0 + 100 },
      { spatialLayer: 0, temporalLayer: 0, at: t0 + 200 },
    ]);
    // Its first layer: the toggle is undone and stops.
    consumer.emit('layerschange', { spatialLayer: 0, temporalLayer: 0 });
    await vi.advanceTimersByTimeAsync(300);
    expect(raised.slice(3)).toEqual([{ spatialLayer: 0, at: t0 + 300 }]);
    expect(consumer.preferredLayers).toEqual({ spatialLayer: 0 });
    // Then the raise, as without the toggle.
    await vi.advanceTimersByTimeAsync(100);
    expect(raised.slice(4)).toEqual([{ spatialLayer: 2, at: t0 + 250 + 350 }]);
    layers.close();
  });

  it('on resume, gives up after 4 s without a layer and leaves the preferred layers as they were', async () => {
    const { layers, consumer, raised } = viewer();
    layers.resumed(consumer as never);
    await vi.advanceTimersByTimeAsync(5000);
    expect(raised.length).toBeGreaterThan(30);
    expect(raised.length).toBeLessThan(45);
    expect(consumer.preferredLayers).toEqual({ spatialLayer: 0 });
    expect(vi.getTimerCount()).toBe(0);
    layers.close();
  });

  it('on resume, leaves alone a consumer that already forwards, one of another kind, and one raised by someone else; close() stops the toggle', async () => {
    const started = viewer();
    started.consumer.emit('layerschange', { spatialLayer: 0, temporalLayer: 2 });
    started.layers.resumed(started.consumer as never);
    await vi.advanceTimersByTimeAsync(10);
    expect(started.raised).toEqual([]);
    started.layers.close();

    const simple = viewer();
    Object.assign(simple.consumer, { type: 'simple' });
    simple.layers.resumed(simple.consumer as never);
    await vi.advanceTimersByTimeAsync(300);
    expect(simple.raised).toEqual([]);
    simple.layers.close();

    const raisedMeanwhile = viewer();
    raisedMeanwhile.layers.resumed(raisedMeanwhile.consumer as never);
    await raisedMeanwhile.consumer.setPreferredLayers({ spatialLayer: 2 });
    await vi.advanceTimersByTimeAsync(300);
    expect(raisedMeanwhile.raised.map(({ at: _, ...l }) => l)).toEqual([{ spatialLayer: 0, temporalLayer: 0 }, { spatialLayer: 2 }]);
    raisedMeanwhile.layers.close();

    const closed = viewer();
    closed.layers.resumed(closed.consumer as never);
    closed.layers.close();
    await vi.advanceTimersByTimeAsync(300);
    expect(closed.raised).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a viewer that leaves before the raise is due leaves no timer behind', async () => {
    const { layers, consumer, raised } = viewer();
    consumer.emit('layerschange', { spatialLayer: 0, temporalLayer: 0 });
    layers.close();
    await vi.advanceTimersByTimeAsync(1000);
    expect(raised).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
