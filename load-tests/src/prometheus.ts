/** Just enough of the Prometheus text format to read a Cascade node's /metrics. */

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parse exposition text; comment and malformed lines are skipped. */
export function parsePrometheus(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const value = parseValue(m[3]!);
    if (value === undefined) continue;
    const labels: Record<string, string> = {};
    if (m[2]) {
      for (const l of m[2].matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

function parseValue(s: string): number | undefined {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  const n = Number(s);
  return Number.isNaN(n) ? undefined : n;
}

/** Sum of every sample of `name` (all label sets), or undefined if the metric is absent. */
export function metricValue(samples: readonly MetricSample[], name: string): number | undefined {
  let found = false;
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    found = true;
    total += s.value;
  }
  return found ? total : undefined;
}

/** The figures the load test reads from one scrape. */
export interface NodeMetrics {
  /** CPU of the node process and its mediasoup workers, in cores. */
  cpuCores?: number;
  /** Resident memory of the Node process (workers not included), bytes. */
  rssBytes?: number;
  consumers?: number;
  viewers?: number;
  bytesSent?: number;
  bitrateOutKbps?: number;
}

export function nodeMetrics(text: string): NodeMetrics {
  const s = parsePrometheus(text);
  const pick = (name: string) => metricValue(s, name);
  const m: NodeMetrics = {};
  const set = <K extends keyof NodeMetrics>(k: K, v: number | undefined) => {
    if (v !== undefined && Number.isFinite(v)) m[k] = v;
  };
  set('cpuCores', pick('cascade_node_cpu_cores'));
  set('rssBytes', pick('cascade_process_resident_memory_bytes'));
  set('consumers', pick('cascade_media_consumers'));
  set('viewers', pick('cascade_node_viewers'));
  set('bytesSent', pick('cascade_media_bytes_sent_total'));
  set('bitrateOutKbps', pick('cascade_node_bitrate_out_kbps'));
  return m;
}
