import type { NodeSample, TimelinePoint } from './LoadTestTypes.js';

const f = (x: number | null | undefined, digits = 1, unit = ''): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(digits)}${unit}`;

/** The one-line-per-second progress: viewers, joins/s, delay, loss, and the origin's CPU. */
export function formatProgress(p: TimelinePoint, total: number, nodes: ReadonlyMap<string, NodeSample>): string {
  const cpu = [...nodes.entries()].map(([id, s]) => `${id} ${f(s.cpuCores, 2)}c/${s.viewers ?? '–'}v`).join(' ');
  return (
    `[${String(Math.round(p.t)).padStart(4)}s] viewers ${p.connected}/${total}` +
    (p.joining ? ` (+${p.joining} joining)` : '') +
    (p.failed ? ` failed ${p.failed}` : '') +
    ` | joins/s ${p.joins}` +
    ` | rx ${f(p.rxKbps / 1000, 1, ' Mbit/s')}` +
    ` | fps ${f(p.fps)}` +
    ` | delay p50 ${f(p.delayP50Ms, 1, ' ms')} p95 ${f(p.delayP95Ms, 1, ' ms')}` +
    ` | loss ${f(p.lossPct, 2, '%')}` +
    ` | host ${f(p.hostCpuPct, 0, '%')}` +
    (cpu ? ` | node ${cpu}` : '')
  );
}
