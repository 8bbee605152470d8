import { describe, expect, it } from 'vitest';
import { LogHistogram } from '../src/LogHistogram.js';
import { linearBins, renderReportHtml } from '../src/report/html.js';
import { barChart, escapeXml, histogramChart, lineChart, niceTicks } from '../src/report/svg.js';
import { formatProgress } from '../src/progress.js';
import { formatSummary } from '../src/summaryText.js';
import { makeReport, node, point, viewer } from './fixtures.js';

describe('renderReportHtml()', () => {
  it('is one self-contained document: inline SVG, no script, nothing loaded from elsewhere', () => {
    const html = renderReportHtml(makeReport());
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('</html>');
    expect((html.match(/<svg /g) ?? []).length).toBeGreaterThanOrEqual(10);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link /i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
    // The only URLs are the SVG namespace and the tested server's, shown as text.
    const urls = html.match(/https?:\/\/[^\s"'<)&]+/g) ?? [];
    for (const u of urls) expect(['http://www.w3.org/2000/svg', 'http://127.0.0.1:8080']).toContain(u);
  });

  it('shows the headline figures and a row per node', () => {
    const html = renderReportHtml(makeReport({ nodes: [node('origin-1', 'origin'), node('relay-b', 'relay')] }));
    expect(html).toContain('10 / 10');
    expect(html).toContain('join time: watch() → resolved (ms)');
    expect(html).toContain('end-to-end delay per frame (ms)');
    expect(html).toContain('<td>relay-b</td>');
  });

  it('escapes text that came from the network', () => {
    const html = renderReportHtml(
      makeReport({
        streamId: '<img onerror=x>',
        warnings: ['<b>bad</b>'],
        viewers: [viewer(0, { ok: false, joinMs: null, rtp: null, error: { code: 'CASCADE_ERR_<x>', message: '' } })],
      }),
    );
    expect(html).not.toContain('<img onerror');
    expect(html).not.toContain('<b>bad</b>');
    expect(html).toContain('&lt;b&gt;bad&lt;/b&gt;');
    expect(html).toContain('CASCADE_ERR_&lt;x&gt;');
  });

  it('renders a run with no data at all (every chart says so)', () => {
    const html = renderReportHtml(makeReport({ viewers: [], timeline: [], nodes: [], generator: [], delayHistogram: new LogHistogram().toJSON() }));
    expect(html).toContain('no data');
    expect(html).toContain('</html>');
  });

  it('lists decoders with their resolution and fps', () => {
    const html = renderReportHtml(
      makeReport({
        decoders: [
          {
            index: 0,
            ok: true,
            nodeId: 'origin-1',
            joinMs: 800,
            firstFrameMs: 1200,
            renderDelay: null,
            renderDelayHistogram: null,
            samples: [{ t: 1, framesDecoded: 30, framesDropped: 0, framesPerSecond: 30, freezeCount: 0, totalFreezesDurationSec: 0, frameWidth: 640, frameHeight: 360, packetsReceived: 60, packetsLost: 0, jitterMs: 2, bytesReceived: 60000 }],
          },
        ],
      }),
    );
    expect(html).toContain('640×360');
    expect(html).toContain('Decoded frames per second');
  });
});

describe('svg charts', () => {
  it('niceTicks() covers the range with round steps', () => {
    expect(niceTicks(0, 100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0, 0.9, 4)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    const t = niceTicks(3, 3);
    expect(t[0]).toBeLessThanOrEqual(3);
    expect(t[t.length - 1]).toBeGreaterThan(3);
    expect(niceTicks(NaN, 1)).toEqual([]);
  });

  it('lineChart() draws one polyline per series with a legend', () => {
    const svg = lineChart({
      title: 'T',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        { name: 'a', points: [[0, 1], [1, 2]] },
        { name: 'b', points: [[0, 2], [1, 3]], step: true },
      ],
    });
    expect((svg.match(/<polyline/g) ?? []).length).toBe(2);
    expect(svg).toContain('>a</text>');
    expect(svg).not.toContain('NaN');
  });

  it('charts skip non-finite points and say "no data" when nothing is left', () => {
    expect(lineChart({ title: 'T', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[NaN, 1]] }] })).toContain('no data');
    expect(histogramChart({ title: 'H', xLabel: 'x', bins: [] })).toContain('no data');
    expect(barChart({ title: 'B', yLabel: 'y', bars: [] })).toContain('no data');
  });

  it('histogramChart() draws a bar per non-empty bin', () => {
    const svg = histogramChart({ title: 'H', xLabel: 'ms', bins: [[0, 1, 3], [1, 2, 0], [2, 3, 5]] });
    expect((svg.match(/<rect /g) ?? []).length).toBe(2);
  });

  it('escapeXml() escapes markup characters', () => {
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('linearBins() re-bins the delay histogram up to ~p99.5 keeping the bulk', () => {
    const h = new LogHistogram();
    for (let i = 0; i < 1000; i++) h.add(1 + (i % 10));
    h.add(10_000);
    const bins = linearBins(h, 20);
    expect(bins).toHaveLength(20);
    expect(bins.reduce((n, b) => n + b[2], 0)).toBe(1000);
    expect(linearBins(new LogHistogram())).toEqual([]);
  });
});

describe('terminal output', () => {
  it('formatProgress() shows viewers, joins/s, delay, loss and node CPU on one line', () => {
    const line = formatProgress(point(12, { connected: 240, joining: 5, joins: 20, delayP50Ms: 2.14, lossPct: 0.5 }), 500, new Map([['origin-1', { t: 12, cpuCores: 0.45, rssBytes: 1, consumers: 240, viewers: 240, bitrateOutKbps: 1 }]]));
    expect(line).not.toContain('\n');
    expect(line).toContain('viewers 240/500 (+5 joining)');
    expect(line).toContain('joins/s 20');
    expect(line).toContain('delay p50 2.1 ms');
    expect(line).toContain('loss 0.50%');
    expect(line).toContain('origin-1 0.45c/240v');
  });

  it('formatSummary() names the run and every measure', () => {
    const text = formatSummary(makeReport());
    for (const word of ['join time', 'first packet', 'first frame', 'bitrate', 'loss per viewer', 'jitter', 'freezes', 'end-to-end delay', 'node origin-1']) {
      expect(text).toContain(word);
    }
  });
});
