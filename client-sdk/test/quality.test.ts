import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_SIMULCAST, QualitySender, WatchQuality, cappedQuality, isQuality, videoEncodings, type Quality, type QualityInfo } from '../src/quality.js';
import { TypedEmitter } from '@cascade/protocol';

describe('videoEncodings()', () => {
  it('sends the default three layers lowest first, with temporal layers for VP8', () => {
    const e = videoEncodings(undefined, 1_500_000, 'vp8');
    expect(e.map((x) => [x.scaleResolutionDownBy, x.maxBitrate])).toEqual(DEFAULT_SIMULCAST.map((l) => [l.scaleResolutionDownBy, l.maxBitrate]));
    expect(e.every((x) => (x as { scalabilityMode?: string }).scalabilityMode === 'L1T3')).toBe(true);
    expect(videoEncodings(undefined, 1_500_000, 'h264').some((x) => 'scalabilityMode' in x)).toBe(false);
  });
  it('sends one encoding without simulcast', () => {
    expect(videoEncodings(false, 900_000, 'vp8')).toEqual([{ maxBitrate: 900_000 }]);
  });
  it('rejects impossible layers with TypeError', () => {
    expect(() => videoEncodings([], 1, 'vp8')).toThrow(TypeError);
    expect(() => videoEncodings(Array(5).fill({ scaleResolutionDownBy: 1, maxBitrate: 1 }), 1, 'vp8')).toThrow(TypeError);
    expect(() => videoEncodings([{ scaleResolutionDownBy: 0.5, maxBitrate: 100 }], 1, 'vp8')).toThrow(TypeError);
    expect(() => videoEncodings([{ scaleResolutionDownBy: 1, maxBitrate: 0 }], 1, 'vp8')).toThrow(TypeError);
  });
});

describe('QualitySender', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('a hundred changes in a second cost a handful of requests, the last one winning', async () => {
    const sent: Quality[] = [];
    const s = new QualitySender(async (q) => void sent.push(q), { minIntervalMs: 250 });
    s.reset('auto');
    const qs: Quality[] = ['low', 'high', 'medium', 'audio'];
    for (let i = 0; i < 100; i++) {
      s.request(qs[i % 4]!);
      await vi.advanceTimersByTimeAsync(10);
    }
    s.request('low');
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent.length).toBeLessThanOrEqual(6);
    expect(sent.at(-1)).toBe('low');
  });

  it('sends nothing for the quality the node already has', async () => {
    const sent: Quality[] = [];
    const s = new QualitySender(async (q) => void sent.push(q));
    s.reset('low');
    s.request('low');
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([]);
  });

  it('keeps going after a failed request, and stops after close()', async () => {
    const sent: Quality[] = [];
    let fail = true;
    const s = new QualitySender(async (q) => {
      sent.push(q);
      if (fail) throw new Error('node gone');
    });
    s.request('low');
    await vi.advanceTimersByTimeAsync(300);
    fail = false;
    s.request('high');
    await vi.advanceTimersByTimeAsync(300);
    expect(sent).toEqual(['low', 'high']);
    s.close();
    s.request('audio');
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual(['low', 'high']);
  });
});

class FakeConn extends TypedEmitter<{
  layers: [{ spatialLayer: number | null; temporalLayer: number | null; layers: number }];
  consumerclosed: [{ kind: string; track: MediaStreamTrack }];
  originlayers: [top: number | undefined];
}> {
  readonly sent: Quality[] = [];
  constructor(readonly quality: Quality) {
    super();
  }
  async setQuality(q: Quality): Promise<void> {
    this.sent.push(q);
  }
}

class FakeStream {
  tracks: MediaStreamTrack[] = [];
  getTracks() {
    return [...this.tracks];
  }
  removeTrack(t: MediaStreamTrack) {
    this.tracks = this.tracks.filter((x) => x !== t);
  }
}

describe('WatchQuality', () => {
  it('rejects an unknown quality with TypeError', () => {
    expect(() => new WatchQuality('ultra' as Quality, () => {})).toThrow(TypeError);
    const q = new WatchQuality(undefined, () => {});
    expect(() => q.set('4k' as Quality)).toThrow(TypeError);
    expect(isQuality('audio')).toBe(true);
    expect(isQuality('video')).toBe(false);
  });

  it('reports the layer received and the quality asked for, and re-sends a quality changed during a move', async () => {
    const infos: QualityInfo[] = [];
    const q = new WatchQuality('auto', (i) => infos.push(i));
    const a = new FakeConn('auto');
    q.adopt(a, new FakeStream() as unknown as MediaStream);
    a.emit('layers', { spatialLayer: 2, temporalLayer: 2, layers: 3 });
    a.emit('layers', { spatialLayer: 2, temporalLayer: 2, layers: 3 });
    expect(infos).toEqual([{ quality: 'auto', spatialLayer: 2, temporalLayer: 2, layers: 3 }]);
    q.set('low');
    expect(infos.at(-1)!.quality).toBe('low');
    await new Promise((r) => setTimeout(r, 10));
    expect(a.sent).toEqual(['low']);
    // A new node subscribed with 'low': nothing to send. One that subscribed with 'auto' is told.
    const b = new FakeConn('low');
    q.adopt(b, new FakeStream() as unknown as MediaStream);
    const c = new FakeConn('auto');
    q.adopt(c, new FakeStream() as unknown as MediaStream);
    await new Promise((r) => setTimeout(r, 300));
    expect(b.sent).toEqual([]);
    expect(c.sent).toEqual(['low']);
    // Events of a connection left behind are ignored.
    a.emit('layers', { spatialLayer: 0, temporalLayer: 0, layers: 3 });
    expect(infos.at(-1)!.spatialLayer).toBe(2);
    q.close();
  });

  it('asks for no more than the layers the origin gets: the viewer\'s choice lowered while the broadcaster sends fewer, back when it sends them again', () => {
    expect(['auto', 'high', 'medium', 'low', 'audio'].map((q) => cappedQuality(q as Quality, 1, 3))).toEqual(['medium', 'medium', 'medium', 'low', 'audio']);
    expect(['auto', 'high', 'medium', 'low'].map((q) => cappedQuality(q as Quality, 0, 3))).toEqual(['low', 'low', 'low', 'low']);
    expect(['auto', 'medium'].map((q) => cappedQuality(q as Quality, 2, 3))).toEqual(['auto', 'medium']);
    // Two layers, the top one gone; one layer, or nothing known: nothing to lower.
    expect([cappedQuality('auto', 0, 2), cappedQuality('auto', 0, 1), cappedQuality('auto', undefined, 3)]).toEqual(['low', 'auto', 'auto']);
  });

  it('follows the origin\'s layers as the connection reports them, once the stream\'s layer count is known; info.quality stays the viewer\'s', async () => {
    vi.useFakeTimers();
    const infos: QualityInfo[] = [];
    const q = new WatchQuality('auto', (i) => infos.push(i));
    const a = new FakeConn('auto');
    q.adopt(a, new FakeStream() as unknown as MediaStream);
    a.emit('originlayers', 1);
    await vi.advanceTimersByTimeAsync(300);
    expect(a.sent).toEqual([]);
    a.emit('layers', { spatialLayer: 2, temporalLayer: 2, layers: 3 });
    await vi.advanceTimersByTimeAsync(300);
    expect(a.sent).toEqual(['medium']);
    a.emit('originlayers', 0);
    await vi.advanceTimersByTimeAsync(300);
    a.emit('originlayers', 2);
    await vi.advanceTimersByTimeAsync(300);
    expect(a.sent).toEqual(['medium', 'low', 'auto']);
    expect(infos.every((i) => i.quality === 'auto')).toBe(true);
    // The viewer's own choice within the cap; a new node starts without one.
    a.emit('originlayers', 1);
    q.set('low');
    await vi.advanceTimersByTimeAsync(300);
    expect(a.sent.at(-1)).toBe('low');
    const b = new FakeConn('low');
    q.adopt(b, new FakeStream() as unknown as MediaStream);
    a.emit('originlayers', 0);
    await vi.advanceTimersByTimeAsync(300);
    expect(b.sent).toEqual([]);
    q.close();
    vi.useRealTimers();
  });

  it("takes the video track out of the MediaStream only when the viewer chose 'audio'", () => {
    const q = new WatchQuality('auto', () => {});
    const conn = new FakeConn('auto');
    const ms = new FakeStream();
    const video = { kind: 'video' } as MediaStreamTrack;
    ms.tracks = [video];
    q.adopt(conn, ms as unknown as MediaStream);
    // Its source was replaced: the track stays until the new one arrives.
    conn.emit('consumerclosed', { kind: 'video', track: video });
    expect(ms.tracks).toEqual([video]);
    q.set('audio');
    conn.emit('consumerclosed', { kind: 'video', track: video });
    expect(ms.tracks).toEqual([]);
    q.close();
  });
});
