import { describe, expect, it } from 'vitest';
import { saturationWarnings, stampWarning, summarizeNode, summarizeRun } from '../src/aggregate.js';
import { LogHistogram } from '../src/LogHistogram.js';
import { node, point, rtp, viewer } from './fixtures.js';

describe('summarizeRun()', () => {
  it('counts joined, failed and not-started viewers and groups failures by code', () => {
    const viewers = [
      viewer(0),
      viewer(1),
      viewer(2, { ok: false, joinMs: null, firstPacketMs: null, firstFrameMs: null, rtp: null, error: { code: 'CASCADE_ERR_NODE_CAPACITY', message: 'full' } }),
      viewer(3, { ok: false, startedAt: 0, joinMs: null, rtp: null, error: { code: 'CASCADE_ERR_LOADTEST_NOT_STARTED', message: '' } }),
    ];
    const s = summarizeRun({ target: 4, timeline: [], viewers, decoders: [], nodes: [], generator: [], delay: new LogHistogram().toJSON() });
    expect(s.viewers).toEqual({ target: 4, started: 3, joined: 2, failed: 1, failuresByCode: { CASCADE_ERR_NODE_CAPACITY: 1 } });
    expect(s.joinMs).toMatchObject({ count: 2, min: 100, max: 101 });
    expect(s.delayMs).toBeNull();
  });

  it('gives overall loss as all lost over all expected, and per-viewer loss in %', () => {
    const viewers = [viewer(0, { rtp: rtp({ expected: 1000, lost: 10, lossFraction: 0.01 }) }), viewer(1, { rtp: rtp({ expected: 3000, lost: 0, lossFraction: 0 }) })];
    const s = summarizeRun({ target: 2, timeline: [], viewers, decoders: [], nodes: [], generator: [], delay: new LogHistogram().toJSON() });
    expect(s.lossPctOverall).toBeCloseTo(0.25);
    expect(s.lossPct).toMatchObject({ max: 1, min: 0 });
  });

  it('takes the delay summary from the merged histogram', () => {
    const h = new LogHistogram();
    for (let i = 0; i < 100; i++) h.add(5);
    const s = summarizeRun({ target: 0, timeline: [], viewers: [], decoders: [], nodes: [], generator: [], delay: h.toJSON() });
    expect(s.delayMs).toMatchObject({ count: 100, min: 5, max: 5, p50: 5 });
  });

  it('summarises the machine CPU from the timeline', () => {
    const s = summarizeRun({
      target: 0,
      timeline: [point(1, { hostCpuPct: 10 }), point(2, { hostCpuPct: 30 }), point(3, { hostCpuPct: null })],
      viewers: [],
      decoders: [],
      nodes: [],
      generator: [],
      delay: new LogHistogram().toJSON(),
    });
    expect(s.generator.hostCpuPct).toMatchObject({ count: 2, max: 30 });
  });
});

describe('summarizeNode()', () => {
  it('derives CPU per viewer only from samples with viewers', () => {
    const n = node('origin-1', 'origin', {
      samples: [
        { t: 1, cpuCores: 0.5, rssBytes: 1, consumers: 0, viewers: 0, bitrateOutKbps: 0 },
        { t: 2, cpuCores: 0.5, rssBytes: 2, consumers: 100, viewers: 100, bitrateOutKbps: 40000 },
      ],
    });
    const s = summarizeNode(n, []);
    expect(s.cpuPerViewerPct).toMatchObject({ count: 1, p50: 0.5 });
    expect(s.viewersMax).toBe(100);
    expect(s.rssMaxBytes).toBe(2);
  });

  it('attributes loss and bitrate to the node that served each viewer', () => {
    const viewers = [
      viewer(0, { nodeId: 'relay-a', rtp: rtp({ expected: 100, lost: 5, bitrateKbps: 300 }) }),
      viewer(1, { nodeId: 'origin-1', rtp: rtp({ expected: 100, lost: 0 }) }),
    ];
    const s = summarizeNode(node('relay-a', 'relay'), viewers);
    expect(s.servedViewers).toBe(1);
    expect(s.lossPct).toBeCloseTo(5);
    expect(s.rxKbpsPerViewer?.p50).toBe(300);
  });
});

describe('saturationWarnings()', () => {
  const base = () => summarizeRun({ target: 0, timeline: [], viewers: [], decoders: [], nodes: [], generator: [], delay: new LogHistogram().toJSON() });

  it('warns when viewer processes or the machine were saturated', () => {
    const s = base();
    s.generator.cpuPctPerProcess = { count: 5, min: 90, max: 100, mean: 95, p50: 95, p95: 99, p99: 100 };
    s.generator.hostCpuPct = { count: 5, min: 90, max: 100, mean: 95, p50: 95, p95: 99, p99: 100 };
    expect(saturationWarnings(s)).toHaveLength(2);
  });

  it('is silent for a relaxed run', () => {
    expect(saturationWarnings(base())).toEqual([]);
  });
});

describe('stampWarning()', () => {
  it('reports frames whose stamps were rewritten on the way', () => {
    expect(stampWarning([viewer(0, { rtp: rtp({ implausibleDelays: 3, frames: 600 }) }), viewer(1)])).toMatch(/^3 of 1200 frames/);
  });

  it('is silent when every stamp was plausible', () => {
    expect(stampWarning([viewer(0), viewer(1, { rtp: null })])).toBeUndefined();
  });
});
