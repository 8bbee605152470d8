import { describe, expect, it } from 'vitest';
import { LayerClock, formatLayers, summarizeLayers } from '../src/layers.js';
import { parseCliArgs } from '../src/options.js';
import { viewer } from './fixtures.js';

describe('LayerClock', () => {
  it('adds up the time on each layer and counts the changes', () => {
    const c = new LayerClock();
    c.on(null, 3, 0);
    c.on(0, 3, 1000);
    c.on(2, 3, 3000);
    c.on(2, 3, 4000);
    c.on(0, 3, 7000);
    expect(c.result(8000)).toEqual({ msPerLayer: [3000, 0, 4000], final: 0, changes: 2, layers: 3 });
  });
  it('has nothing for a viewer that never received video', () => {
    expect(new LayerClock().result(5000)).toEqual({ msPerLayer: [], final: null, changes: 0, layers: 0 });
  });
});

describe('summarizeLayers()', () => {
  it('keeps viewers behind the cap apart from the others', () => {
    const free = { ...viewer(0), layers: { msPerLayer: [0, 0, 9000], final: 2, changes: 1, layers: 3 } };
    const capped = { ...viewer(1), capped: true, layers: { msPerLayer: [8000, 2000], final: 0, changes: 3, layers: 3 } };
    const s = summarizeLayers([free, capped], []);
    expect(s.free!.viewers).toBe(1);
    expect(s.free!.shareOnLayer).toEqual([0, 0, 1]);
    expect(s.capped!.shareOnLayer).toEqual([0.8, 0.2]);
    expect(s.capped!.finalLayer).toEqual({ '0': 1 });
    expect(s.freeDecoders).toBeNull();
    expect(formatLayers(s).join('\n')).toContain('capped viewers (1): time on layer 0: 80 %, 1: 20 %');
  });
});

describe('--capped options', () => {
  it('takes a count of the simulated viewers, a cap and capped decoders', () => {
    const o = parseCliArgs(['--url', 'http://h:1', '--broadcast', '--viewers', '10', '--capped', '3', '--cap-kbit', '400', '--capped-decoders', '1', '--camera', 'testsrc'])!;
    expect([o.capped, o.capKbit, o.cappedDecoders, o.camera]).toEqual([3, 400, 1, 'testsrc']);
  });
  it('refuses more capped viewers than viewers, and a cap with sink viewers', () => {
    expect(() => parseCliArgs(['--url', 'http://h:1', '--broadcast', '--viewers', '2', '--capped', '3'])).toThrow(/--capped/);
    expect(() => parseCliArgs(['--url', 'http://h:1', '--broadcast', '--viewers', '2', '--capped', '1', '--client', 'sink'])).toThrow(/--capped/);
  });
});
