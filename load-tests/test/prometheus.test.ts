import { describe, expect, it } from 'vitest';
import { metricValue, nodeMetrics, parsePrometheus } from '../src/prometheus.js';

const TEXT = `# HELP cascade_node_cpu_cores CPU used by this process and its workers, in cores
# TYPE cascade_node_cpu_cores gauge
cascade_node_cpu_cores{node="vm-8080",role="origin+controller"} 0.42
cascade_process_resident_memory_bytes{node="vm-8080",role="origin+controller"} 89051136
cascade_media_consumers{node="vm-8080",role="origin+controller"} 201
cascade_node_viewers{node="vm-8080",role="origin+controller"} 200
cascade_media_bytes_sent_total{node="vm-8080",role="origin+controller"} 1.5e9
cascade_signal_errors_total{code="CASCADE_ERR_A",node="x"} 2
cascade_signal_errors_total{code="CASCADE_ERR_B",node="x"} 3
weird_label{path="a\\"b",x="1"} +Inf 1700000000000
garbage line
`;

describe('parsePrometheus()', () => {
  it('reads names, labels and values, skipping comments and junk', () => {
    const s = parsePrometheus(TEXT);
    expect(s.find((x) => x.name === 'cascade_node_cpu_cores')).toEqual({
      name: 'cascade_node_cpu_cores',
      labels: { node: 'vm-8080', role: 'origin+controller' },
      value: 0.42,
    });
    expect(s.find((x) => x.name === 'weird_label')).toEqual({ name: 'weird_label', labels: { path: 'a"b', x: '1' }, value: Infinity });
    expect(s.some((x) => x.name === 'garbage')).toBe(false);
  });

  it('metricValue() sums every label set, undefined when absent', () => {
    const s = parsePrometheus(TEXT);
    expect(metricValue(s, 'cascade_signal_errors_total')).toBe(5);
    expect(metricValue(s, 'nope')).toBeUndefined();
  });
});

describe('nodeMetrics()', () => {
  it('picks the figures the load test reports', () => {
    expect(nodeMetrics(TEXT)).toEqual({ cpuCores: 0.42, rssBytes: 89051136, consumers: 201, viewers: 200, bytesSent: 1.5e9 });
  });

  it('leaves out what the node does not expose', () => {
    expect(nodeMetrics('')).toEqual({});
  });
});
