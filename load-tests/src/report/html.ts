/** The self-contained HTML report: tables plus inline SVG charts, no script, nothing fetched. */
import type { LoadTestReport, TimelinePoint } from '../LoadTestTypes.js';
import { LogHistogram } from '../LogHistogram.js';
import { cdf, histogram, type Summary } from '../stats.js';
import { barChart, escapeXml as esc, histogramChart, lineChart, type Series } from './svg.js';

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1520px;padding:20px;color:#111827;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.muted{color:#6b7280}table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #e5e7eb;padding:3px 8px;text-align:right}th{background:#f9fafb}td:first-child,th:first-child{text-align:left}
.grid2{display:grid;grid-template-columns:repeat(auto-fill,minmax(730px,1fr));gap:8px}
svg.chart{background:#fff;border:1px solid #e5e7eb;border-radius:4px;max-width:100%;height:auto}
svg .title{font-weight:600;font-size:13px}svg .tick{font-size:10px;fill:#4b5563}svg .label{font-size:11px;fill:#374151}
svg .legend{font-size:11px}svg .grid{stroke:#f3f4f6}svg .axis{stroke:#9ca3af}svg .muted{fill:#9ca3af}
.warn{background:#fffbeb;border:1px solid #f59e0b;padding:6px 10px;border-radius:4px}
.kpi{display:inline-block;margin:4px 18px 4px 0}.kpi b{font-size:20px;display:block}
code,pre{font-family:ui-monospace,Menlo,monospace;font-size:12px}pre{background:#f9fafb;padding:8px;overflow:auto}
`;

const fmt = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
const mb = (bytes: number | null | undefined): string => (bytes === null || bytes === undefined ? '–' : `${(bytes / 1048576).toFixed(0)} MB`);

function summaryRow(name: string, s: Summary | null, digits = 1): string {
  if (!s) return `<tr><td>${esc(name)}</td><td>0</td><td colspan="6" class="muted">no data</td></tr>`;
  return `<tr><td>${esc(name)}</td><td>${s.count}</td><td>${fmt(s.p50, digits)}</td><td>${fmt(s.p95, digits)}</td><td>${fmt(s.p99, digits)}</td><td>${fmt(s.min, digits)}</td><td>${fmt(s.max, digits)}</td><td>${fmt(s.mean, digits)}</td></tr>`;
}

function series(name: string, timeline: readonly TimelinePoint[], y: (p: TimelinePoint) => number | null): Series {
  return { name, points: timeline.flatMap((p) => (y(p) === null ? [] : [[p.t, y(p)!] as const])) };
}

/**
 * Re-bin the delay histogram's logarithmic buckets into equal-width bins up to about the
 * 99.5th percentile, so the plot shows the bulk and not one far outlier.
 */
export function linearBins(h: LogHistogram, count = 40): [number, number, number][] {
  if (h.count === 0) return [];
  const hi = Math.max(h.percentile(99.5), 0.1);
  const width = hi / count;
  const out: [number, number, number][] = Array.from({ length: count }, (_, i) => [i * width, (i + 1) * width, 0]);
  for (const [a, b, c] of h.bins()) {
    // A bucket that starts below the cut belongs to the plot (the one holding p99.5 included).
    if (a < hi) out[Math.min(count - 1, Math.floor((a + b) / 2 / width))]![2] += c;
  }
  return out;
}

/** CDF points from histogram bins: [upper edge, cumulative fraction]. */
function binsCdf(h: LogHistogram): [number, number][] {
  let seen = 0;
  const hi = h.percentile(99.9);
  const out: [number, number][] = [];
  for (const [, b, c] of h.bins()) {
    seen += c;
    if (b <= hi * 1.05 || out.length === 0) out.push([b, seen / h.count]);
  }
  return out;
}

export function renderReportHtml(r: LoadTestReport): string {
  const s = r.summary;
  const tl = r.timeline;
  const delay = LogHistogram.fromJSON(r.delayHistogram);
  const joined = r.viewers.filter((v) => v.joinMs !== null);
  const joins = joined.map((v) => v.joinMs!);
  const parts: string[] = [];
  const add = (x: string) => parts.push(x);

  add(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">`);
  add(`<title>Cascade load test · ${esc(r.streamId)} · ${esc(r.startedAt)}</title><style>${CSS}</style></head><body>`);
  add(`<h1>Cascade load test</h1>`);
  add(
    `<div class="muted">${esc(r.options.url)} · stream <code>${esc(r.streamId)}</code> · ${esc(r.startedAt)} → ${esc(r.endedAt)} · ended: ${esc(r.endReason)} · broadcaster: ${esc(r.broadcaster.kind)}${r.broadcaster.stamped ? ' (frames stamped: delay measured)' : ' (not stamped: no delay figures)'}</div>`,
  );
  add(`<div>`);
  const kpi = (label: string, value: string) => add(`<span class="kpi"><b>${esc(value)}</b>${esc(label)}</span>`);
  kpi('viewers joined', `${s.viewers.joined} / ${s.viewers.target}`);
  kpi('failed joins', String(s.viewers.failed));
  kpi('join p50 / p95 (ms)', `${fmt(s.joinMs?.p50, 0)} / ${fmt(s.joinMs?.p95, 0)}`);
  kpi('delay p50 / p95 (ms)', `${fmt(s.delayMs?.p50)} / ${fmt(s.delayMs?.p95)}`);
  kpi('loss overall', `${fmt(s.lossPctOverall, 3)} %`);
  kpi('decoders ok', `${s.decoders.ok} / ${s.decoders.count}`);
  add(`</div>`);
  if (r.warnings.length) add(`<div class="warn"><b>Warnings</b><ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`);

  add(`<h2>Simulated viewers (werift, receive-only)</h2>`);
  add(`<table><tr><th>measure</th><th>n</th><th>p50</th><th>p95</th><th>p99</th><th>min</th><th>max</th><th>mean</th></tr>`);
  add(summaryRow('join time: watch() → resolved (ms)', s.joinMs, 0));
  add(summaryRow('time to first packet (ms)', s.firstPacketMs, 0));
  add(summaryRow('time to first frame (ms)', s.firstFrameMs, 0));
  add(summaryRow('bitrate per viewer (kbit/s)', s.bitrateKbps, 0));
  add(summaryRow('packet loss per viewer (%)', s.lossPct, 3));
  add(summaryRow('jitter, RFC 3550 (ms)', s.jitterMs, 2));
  add(summaryRow('freezes per viewer (gaps > freeze gap)', s.freezesPerViewer, 0));
  add(summaryRow('freeze time per viewer (ms)', s.freezeMsPerViewer, 0));
  add(summaryRow('end-to-end delay per frame (ms)', s.delayMs, 2));
  add(`</table>`);
  const codes = Object.entries(s.viewers.failuresByCode);
  if (codes.length) {
    add(`<table><tr><th>error code</th><th>viewers</th></tr>${codes.map(([c, n]) => `<tr><td><code>${esc(c)}</code></td><td>${n}</td></tr>`).join('')}</table>`);
  }

  add(`<h2>Over time</h2><div class="grid2">`);
  add(
    lineChart({
      title: 'Viewers',
      xLabel: 'time (s)',
      yLabel: 'viewers',
      series: [
        series('target (ramp)', tl, (p) => p.target),
        series('connected', tl, (p) => p.connected),
        series('joining', tl, (p) => p.joining),
        series('failed', tl, (p) => p.failed),
      ],
    }),
  );
  add(lineChart({ title: 'Joins per second', xLabel: 'time (s)', yLabel: 'joins/s', series: [series('joins/s', tl, (p) => p.joins)] }));
  add(
    lineChart({
      title: 'Received by all simulated viewers',
      xLabel: 'time (s)',
      yLabel: 'Mbit/s',
      series: [series('rx Mbit/s', tl, (p) => p.rxKbps / 1000)],
    }),
  );
  add(
    lineChart({
      title: 'End-to-end delay',
      xLabel: 'time (s)',
      yLabel: 'ms',
      series: [series('p50', tl, (p) => p.delayP50Ms), series('p95', tl, (p) => p.delayP95Ms)],
    }),
  );
  add(lineChart({ title: 'Packet loss', xLabel: 'time (s)', yLabel: '% of expected', series: [series('loss %', tl, (p) => p.lossPct)] }));
  add(lineChart({ title: 'Frames per second per viewer', xLabel: 'time (s)', yLabel: 'fps', series: [series('fps', tl, (p) => p.fps)] }));
  add(`</div>`);

  add(`<h2>Distributions</h2><div class="grid2">`);
  const jh = histogram(joins, 30);
  add(
    histogramChart({
      title: 'Join time (watch() → resolved)',
      xLabel: 'ms',
      yLabel: 'viewers',
      bins: jh.counts.map((c, i) => [jh.edges[i]!, jh.edges[i + 1]!, c] as const),
    }),
  );
  add(
    lineChart({
      title: 'Join, first packet, first frame: CDF',
      xLabel: 'ms since watch()',
      yLabel: 'fraction of viewers',
      yMax: 1,
      series: [
        { name: 'join', points: cdf(joins), step: true },
        { name: 'first packet', points: cdf(joined.flatMap((v) => (v.firstPacketMs === null ? [] : [v.firstPacketMs]))), step: true },
        { name: 'first frame', points: cdf(joined.flatMap((v) => (v.firstFrameMs === null ? [] : [v.firstFrameMs]))), step: true },
      ],
    }),
  );
  add(histogramChart({ title: 'End-to-end delay per frame (all viewers, to p99.5)', xLabel: 'ms', yLabel: 'frames', bins: linearBins(delay) }));
  add(
    lineChart({
      title: 'End-to-end delay: CDF',
      xLabel: 'ms',
      yLabel: 'fraction of frames',
      yMax: 1,
      series: [{ name: 'delay', points: binsCdf(delay), step: true }],
    }),
  );
  add(`</div>`);

  add(`<h2>Nodes</h2>`);
  add(
    `<table><tr><th>node</th><th>kind</th><th>viewers max</th><th>consumers max</th><th>CPU p50 (cores)</th><th>CPU max (cores)</th><th>CPU per viewer p50 (% core)</th><th>RSS max</th><th>out p50 (Mbit/s)</th><th>simulated viewers served</th><th>rx per viewer p50 (kbit/s)</th><th>loss (%)</th></tr>`,
  );
  for (const n of s.nodes) {
    add(
      `<tr><td>${esc(n.id)}</td><td>${esc(n.kind)}</td><td>${n.viewersMax ?? '–'}</td><td>${n.consumersMax ?? '–'}</td><td>${fmt(n.cpuCores?.p50, 2)}</td><td>${fmt(n.cpuCores?.max, 2)}</td><td>${fmt(n.cpuPerViewerPct?.p50, 3)}</td><td>${mb(n.rssMaxBytes)}</td><td>${fmt(n.bitrateOutKbps ? n.bitrateOutKbps.p50 / 1000 : null)}</td><td>${n.servedViewers}</td><td>${fmt(n.rxKbpsPerViewer?.p50, 0)}</td><td>${fmt(n.lossPct, 3)}</td></tr>`,
    );
  }
  add(`</table><div class="muted">CPU is the node process plus its mediasoup workers (cascade_node_cpu_cores); RSS is the Node process only.</div><div class="grid2">`);
  const perNode = (title: string, yLabel: string, y: (x: LoadTestReport['nodes'][number]['samples'][number]) => number | null) =>
    lineChart({
      title,
      xLabel: 'time (s)',
      yLabel,
      series: r.nodes.map((n) => ({ name: n.id, points: n.samples.flatMap((p) => (y(p) === null ? [] : [[p.t, y(p)!] as const])) })),
    });
  add(perNode('Bitrate out per node', 'Mbit/s', (p) => (p.bitrateOutKbps === null ? null : p.bitrateOutKbps / 1000)));
  add(perNode('CPU per node', 'cores', (p) => p.cpuCores));
  add(perNode('CPU per viewer', '% of a core per viewer', (p) => (p.cpuCores !== null && p.viewers ? (p.cpuCores * 100) / p.viewers : null)));
  add(perNode('Viewers per node (node metrics)', 'viewers', (p) => p.viewers));
  add(barChart({ title: 'Packet loss by serving node (simulated viewers)', yLabel: '%', bars: s.nodes.filter((n) => n.lossPct !== null).map((n) => ({ label: n.id, value: n.lossPct! })) }));
  add(
    barChart({
      title: 'Received bitrate per viewer by serving node (p50)',
      yLabel: 'kbit/s',
      bars: s.nodes.filter((n) => n.rxKbpsPerViewer).map((n) => ({ label: n.id, value: n.rxKbpsPerViewer!.p50 })),
    }),
  );
  add(`</div>`);

  add(`<h2>Load generator</h2>`);
  const g = s.generator;
  add(
    `<div>${g.processes} viewer processes (${g.viewersPerProcess.join(', ')} viewers) · CPU per process p50 ${fmt(g.cpuPctPerProcess?.p50, 0)} % / p95 ${fmt(g.cpuPctPerProcess?.p95, 0)} % of a core · RSS max ${mb(g.rssMaxBytes)} · whole machine p50 ${fmt(g.hostCpuPct?.p50, 0)} % / max ${fmt(g.hostCpuPct?.max, 0)} % of all cores. A process near 100 % of a core delays packets itself: read delay and jitter with that in mind.</div>`,
  );
  add(`<div class="grid2">`);
  add(
    lineChart({
      title: 'CPU per viewer process',
      xLabel: 'time (s)',
      yLabel: '% of one core',
      series: r.generator.map((p) => ({ name: `process ${p.process} (${p.viewers} viewers)`, points: p.samples.map((x) => [x.t, x.cpuPct] as const) })),
    }),
  );
  add(lineChart({ title: 'This machine (all cores)', xLabel: 'time (s)', yLabel: '% busy', yMax: 100, series: [series('host CPU', tl, (p) => p.hostCpuPct)] }));
  add(`</div>`);

  add(`<h2>Decoding viewers (headless Chromium)</h2>`);
  if (r.decoders.length === 0) add(`<div class="muted">none</div>`);
  else {
    add(
      `<table><tr><th>#</th><th>status</th><th>node</th><th>join (ms)</th><th>first frame (ms)</th><th>frames decoded</th><th>fps (last)</th><th>freezes</th><th>freeze time (s)</th><th>resolution</th><th>packets lost</th><th>jitter (ms)</th><th>render delay p50 / p95 (ms)</th></tr>`,
    );
    for (const d of r.decoders) {
      const last = d.samples[d.samples.length - 1];
      add(
        `<tr><td>${d.index}</td><td>${d.ok ? 'ok' : esc(d.error ?? 'failed')}</td><td>${esc(d.nodeId ?? '–')}</td><td>${fmt(d.joinMs, 0)}</td><td>${fmt(d.firstFrameMs, 0)}</td><td>${last?.framesDecoded ?? '–'}</td><td>${fmt(last?.framesPerSecond, 0)}</td><td>${last?.freezeCount ?? '–'}</td><td>${fmt(last?.totalFreezesDurationSec, 2)}</td><td>${last?.frameWidth ? `${last.frameWidth}×${last.frameHeight}` : '–'}</td><td>${last?.packetsLost ?? '–'}</td><td>${fmt(last?.jitterMs, 1)}</td><td>${fmt(d.renderDelay?.p50)} / ${fmt(d.renderDelay?.p95)}</td></tr>`,
      );
    }
    add(`</table><div class="muted">Render delay: stamp → frame presented (requestVideoFrameCallback), so it includes the jitter buffer and decoding.</div>`);
    add(
      lineChart({
        title: 'Decoded frames per second',
        xLabel: 'time (s)',
        yLabel: 'fps',
        series: r.decoders.map((d) => ({ name: `decoder ${d.index}`, points: d.samples.flatMap((x) => (x.framesPerSecond === null ? [] : [[x.t, x.framesPerSecond] as const])) })),
      }),
    );
  }

  add(`<h2>Run</h2><pre>${esc(JSON.stringify({ options: r.options, broadcaster: r.broadcaster, host: r.host }, null, 2))}</pre>`);
  add(`<div class="muted">Raw data: report.json next to this file.</div></body></html>`);
  return parts.join('\n');
}
