/**
 * Inline SVG charts for the HTML report. Hand-written rather than a charting library so the
 * report is one self-contained file that opens offline, with nothing fetched from a CDN.
 */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  /** Draw as steps (for CDFs): y holds until the next x. */
  step?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  width?: number;
  height?: number;
  /** Force the y axis to start at 0 (counts, rates). Default true. */
  yFromZero?: boolean;
  yMax?: number;
}

export interface Bar {
  label: string;
  value: number;
}

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];
const M = { top: 34, right: 16, bottom: 44, left: 62 };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** About `count` round tick values covering [min, max] (1, 2, 2.5, 5 × 10^k steps). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max < min) [min, max] = [max, min];
  if (max === min) max = min + 1;
  const raw = (max - min) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const first = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let v = first, i = 0; v <= max + step * 1e-9 && i < 100; v += step, i++) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

/** Short tick label: 1200 → 1.2k, 0.000123 → 1.23e-4. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a < 1e-3) return v.toExponential(1);
  return String(+v.toPrecision(3));
}

function frame(title: string, width: number, height: number, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(title)}">` +
    `<text x="${M.left}" y="18" class="title">${escapeXml(title)}</text>${body}</svg>`
  );
}

function empty(title: string, width: number, height: number): string {
  return frame(title, width, height, `<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="muted">no data</text>`);
}

function axes(
  xTicks: number[],
  yTicks: number[],
  sx: (v: number) => number,
  sy: (v: number) => number,
  w: number,
  h: number,
  xLabel: string,
  yLabel: string,
  xTickLabel: (v: number) => string = formatTick,
): string {
  let s = '';
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    s += `<line x1="${M.left}" x2="${w - M.right}" y1="${y}" y2="${y}" class="grid"/>`;
    s += `<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" class="tick">${formatTick(t)}</text>`;
  }
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    s += `<line x1="${x}" x2="${x}" y1="${h - M.bottom}" y2="${h - M.bottom + 4}" class="axis"/>`;
    s += `<text x="${x}" y="${h - M.bottom + 16}" text-anchor="middle" class="tick">${escapeXml(xTickLabel(t))}</text>`;
  }
  s += `<line x1="${M.left}" x2="${w - M.right}" y1="${h - M.bottom}" y2="${h - M.bottom}" class="axis"/>`;
  s += `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${h - M.bottom}" class="axis"/>`;
  s += `<text x="${(M.left + w - M.right) / 2}" y="${h - 6}" text-anchor="middle" class="label">${escapeXml(xLabel)}</text>`;
  s += `<text transform="translate(14 ${(M.top + h - M.bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">${escapeXml(yLabel)}</text>`;
  return s;
}

function legend(names: string[], w: number): string {
  if (names.length < 2) return '';
  let x = w - M.right;
  let s = '';
  // Right-aligned, last series rightmost; rough text width is enough for a legend.
  for (let i = names.length - 1; i >= 0; i--) {
    const label = names[i]!.length > 24 ? `${names[i]!.slice(0, 23)}…` : names[i]!;
    x -= label.length * 6.8 + 28;
    s += `<rect x="${x.toFixed(1)}" y="9" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/>`;
    s += `<text x="${(x + 14).toFixed(1)}" y="18" class="legend">${escapeXml(label)}</text>`;
  }
  return s;
}

export function lineChart(o: LineChartOptions): string {
  const w = o.width ?? 720;
  const h = o.height ?? 260;
  const pts = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length === 0) return empty(o.title, w, h);
  let xMin = Math.min(...pts.map((p) => p[0]));
  let xMax = Math.max(...pts.map((p) => p[0]));
  let yMin = o.yFromZero === false ? Math.min(...pts.map((p) => p[1])) : Math.min(0, ...pts.map((p) => p[1]));
  let yMax = o.yMax ?? Math.max(...pts.map((p) => p[1]));
  if (xMax === xMin) xMax = xMin + 1;
  if (yMax === yMin) yMax = yMin + 1;
  const xTicks = niceTicks(xMin, xMax, 8);
  const yTicks = niceTicks(yMin, yMax, 5);
  xMin = Math.min(xMin, xTicks[0]!);
  xMax = Math.max(xMax, xTicks[xTicks.length - 1]!);
  yMin = Math.min(yMin, yTicks[0]!);
  yMax = Math.max(yMax, yTicks[yTicks.length - 1]!);
  const sx = (v: number) => M.left + ((v - xMin) / (xMax - xMin)) * (w - M.left - M.right);
  const sy = (v: number) => h - M.bottom - ((v - yMin) / (yMax - yMin)) * (h - M.top - M.bottom);
  let body = axes(xTicks, yTicks, sx, sy, w, h, o.xLabel, o.yLabel);
  o.series.forEach((s, i) => {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (p.length === 0) return;
    const coords: string[] = [];
    p.forEach(([x, y], j) => {
      if (s.step && j > 0) coords.push(`${sx(x).toFixed(1)},${sy(p[j - 1]![1]).toFixed(1)}`);
      coords.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    });
    const color = PALETTE[i % PALETTE.length];
    body +=
      p.length === 1
        ? `<circle cx="${sx(p[0]![0]).toFixed(1)}" cy="${sy(p[0]![1]).toFixed(1)}" r="3" fill="${color}"><title>${escapeXml(s.name)}</title></circle>`
        : `<polyline fill="none" stroke="${color}" stroke-width="1.8" points="${coords.join(' ')}"><title>${escapeXml(s.name)}</title></polyline>`;
  });
  body += legend(
    o.series.map((s) => s.name),
    w,
  );
  return frame(o.title, w, h, body);
}

export interface HistogramChartOptions {
  title: string;
  xLabel: string;
  yLabel?: string;
  /** [lower edge, upper edge, count] per bin, ascending. */
  bins: readonly (readonly [number, number, number])[];
  width?: number;
  height?: number;
}

export function histogramChart(o: HistogramChartOptions): string {
  const w = o.width ?? 720;
  const h = o.height ?? 240;
  const bins = o.bins.filter(([a, b, c]) => Number.isFinite(a) && Number.isFinite(b) && b > a && c >= 0);
  if (bins.length === 0) return empty(o.title, w, h);
  const xMin0 = bins[0]![0];
  const xMax0 = bins[bins.length - 1]![1];
  const xTicks = niceTicks(xMin0, xMax0, 8);
  const xMin = Math.min(xMin0, xTicks[0]!);
  const xMax = Math.max(xMax0, xTicks[xTicks.length - 1]!);
  const yTicks = niceTicks(0, Math.max(1, ...bins.map((b) => b[2])), 5);
  const yMax = yTicks[yTicks.length - 1]!;
  const sx = (v: number) => M.left + ((v - xMin) / (xMax - xMin)) * (w - M.left - M.right);
  const sy = (v: number) => h - M.bottom - (v / yMax) * (h - M.top - M.bottom);
  let body = axes(xTicks, yTicks, sx, sy, w, h, o.xLabel, o.yLabel ?? 'count');
  for (const [a, b, c] of bins) {
    if (c === 0) continue;
    const x = sx(a);
    const bw = Math.max(1, sx(b) - x - 1);
    body += `<rect x="${x.toFixed(1)}" y="${sy(c).toFixed(1)}" width="${bw.toFixed(1)}" height="${(sy(0) - sy(c)).toFixed(1)}" fill="${PALETTE[0]}"><title>${formatTick(a)}–${formatTick(b)}: ${c}</title></rect>`;
  }
  return frame(o.title, w, h, body);
}

export interface BarChartOptions {
  title: string;
  yLabel: string;
  bars: readonly Bar[];
  width?: number;
  height?: number;
}

/** One bar per category (e.g. per node). */
export function barChart(o: BarChartOptions): string {
  const w = o.width ?? 720;
  const h = o.height ?? 240;
  const bars = o.bars.filter((b) => Number.isFinite(b.value));
  if (bars.length === 0) return empty(o.title, w, h);
  const yTicks = niceTicks(0, Math.max(...bars.map((b) => b.value), 0) || 1, 5);
  const yMax = yTicks[yTicks.length - 1]!;
  const slot = (w - M.left - M.right) / bars.length;
  const sy = (v: number) => h - M.bottom - (v / yMax) * (h - M.top - M.bottom);
  let body = axes([], yTicks, () => 0, sy, w, h, '', o.yLabel);
  bars.forEach((b, i) => {
    const x = M.left + i * slot + slot * 0.15;
    const y = sy(Math.max(0, b.value));
    body += `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${(sy(0) - y).toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(b.label)}: ${formatTick(b.value)}</title></rect>`;
    const label = b.label.length > 18 ? `${b.label.slice(0, 17)}…` : b.label;
    body += `<text x="${(x + slot * 0.35).toFixed(1)}" y="${h - M.bottom + 16}" text-anchor="middle" class="tick">${escapeXml(label)}</text>`;
    body += `<text x="${(x + slot * 0.35).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" class="tick">${formatTick(b.value)}</text>`;
  });
  return frame(o.title, w, h, body);
}
