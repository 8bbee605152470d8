import os from 'node:os';
import { execFileSync } from 'node:child_process';
import type { BenchResult } from './types.js';

export function machineInfo(): Record<string, string | number> {
  let kernel = '';
  try {
    kernel = execFileSync('uname', ['-sr']).toString().trim();
  } catch {
    kernel = os.release();
  }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel,
    node: process.version,
    loadAverage: os.loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

function num(v: number): string {
  return Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : Number(v.toFixed(2)).toString();
}

export interface DatedResult {
  result: BenchResult;
  /** ISO date of the run that produced it. */
  date: string;
  command: string;
}

/**
 * BENCHMARKS.md from the latest result of each benchmark (a run with --only refreshes some
 * and keeps the others' previous figures, each labelled with its own run).
 */
export function renderBenchmarksMd(run: { results: DatedResult[]; failed: { id: string; error: string }[]; command: string; date: Date }): string {
  const m = machineInfo();
  const rows = run.results.flatMap(({ result: r }) =>
    r.figures.map(
      (f) => `| ${r.title} | ${f.name} | **${num(f.value)} ${f.unit}** | ${f.baseline.name}: ${num(f.baseline.value)} ${f.baseline.unit} | **${f.ratio.toFixed(2)}** |`,
    ),
  );
  const sections = run.results.map(({ result: r, date, command }) => {
    const notes = r.figures.map((f) => `- ${f.name}: ${f.note}`).join('\n');
    const warnings = r.warnings.length ? `\n\nWarnings:\n${r.warnings.map((w) => `- ${w}`).join('\n')}` : '';
    const extra = r.markdown ? `\n\n${r.markdown}` : '';
    return `### ${r.title}\n\n${notes}${extra}${warnings}\n\nRun ${date.slice(0, 16).replace('T', ' ')} UTC by \`${command}\`, ${(r.durationMs / 1000).toFixed(0)} s.`;
  });
  const failed = run.failed.length ? `\n## Benchmarks that failed in this run\n\n${run.failed.map((f) => `- ${f.id}: ${f.error}`).join('\n')}\n` : '';
  return `# Benchmarks

Written by \`${run.command}\` on ${run.date.toISOString().slice(0, 10)} (${run.date.toISOString()}); each section
names the run it comes from. Every figure is measured next to a baseline in the same run; the ratio is figure / baseline
unless the note says otherwise. Raw results of each run are kept in \`bench-results/\` (not in git); the results shown here are in \`BENCHMARKS.json\`, so that a run with \`--only\` keeps the other sections.

Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}; load average at the end ${m.loadAverage}.
This is a shared 2-core machine: read the figures as orders of magnitude and compare ratios, not absolute values.

| benchmark | figure | value | baseline (same run) | ratio |
|---|---|---|---|---|
${rows.join('\n')}

## Details

${sections.join('\n\n')}
${failed}`;
}
