import { formatLayers } from './layers.js';
import type { LoadTestReport } from './LoadTestTypes.js';
import type { Summary } from './stats.js';

const f = (x: number | null | undefined, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const line = (name: string, s: Summary | null, unit: string, d = 1) =>
  `  ${name.padEnd(22)} ${s ? `p50 ${f(s.p50, d)}  p95 ${f(s.p95, d)}  p99 ${f(s.p99, d)}  max ${f(s.max, d)} ${unit}  (n=${s.count})` : 'no data'}`;

/** The summary printed at the end of a run. */
export function formatSummary(r: LoadTestReport): string {
  const s = r.summary;
  const out = [
    `Load test of ${r.options.url}, stream ${r.streamId} (${r.broadcaster.kind}), ended: ${r.endReason}`,
    `  viewers: ${s.viewers.joined} joined / ${s.viewers.started} started / ${s.viewers.target} target, ${s.viewers.failed} failed` +
      (Object.keys(s.viewers.failuresByCode).length ? ` ${JSON.stringify(s.viewers.failuresByCode)}` : ''),
    line('join time', s.joinMs, 'ms', 0),
    line('first packet', s.firstPacketMs, 'ms', 0),
    line('first frame', s.firstFrameMs, 'ms', 0),
    line('bitrate', s.bitrateKbps, 'kbit/s', 0),
    line('loss per viewer', s.lossPct, '%', 3),
    line('jitter', s.jitterMs, 'ms', 2),
    line('freezes per viewer', s.freezesPerViewer, '', 0),
    line('end-to-end delay', s.delayMs, 'ms', 2),
    `  loss overall: ${f(s.lossPctOverall, 3)} %`,
  ];
  for (const n of s.nodes) {
    out.push(
      `  node ${n.id} (${n.kind}): viewers max ${n.viewersMax ?? '–'}, CPU p50 ${f(n.cpuCores?.p50, 2)} / max ${f(n.cpuCores?.max, 2)} cores, ` +
        `${f(n.cpuPerViewerPct?.p50, 3)} % core per viewer, out p50 ${f(n.bitrateOutKbps ? n.bitrateOutKbps.p50 / 1000 : null)} Mbit/s, loss ${f(n.lossPct, 3)} %`,
    );
  }
  const g = s.generator;
  out.push(`  load generator: ${g.processes} processes (${g.viewersPerProcess.join('/')} viewers), CPU p50 ${f(g.cpuPctPerProcess?.p50, 0)} % p95 ${f(g.cpuPctPerProcess?.p95, 0)} % of a core each; machine p50 ${f(g.hostCpuPct?.p50, 0)} % of all cores`);
  const d = s.decoders;
  out.push(`  decoders: ${d.ok}/${d.count} ok, fps p50 ${f(d.fps?.p50, 0)}, freezes ${d.freezeCount}, width ${d.frameWidth ?? '–'}, render delay p50 ${f(d.renderDelayMs?.p50)} ms`);
  out.push(...formatLayers(s.layers));
  for (const w of r.warnings.slice(0, 10)) out.push(`  warning: ${w}`);
  return out.join('\n');
}
