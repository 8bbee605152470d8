#!/usr/bin/env node
/**
 * `npm run bench`: every benchmark, one after the other, each figure next to a baseline
 * measured in the same run; results go to bench-results/<date>.json and BENCHMARKS.md.
  *   node load-tests/dist/bench/index.js [--quick] [--only capacity,tree,hops,join,joinStorm,placement,failover,innerFailover,layerLoss,integrity] [--no-write]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderBenchmarksMd, machineInfo, type DatedResult } from './markdown.js';
import type { BenchContext, BenchResult } from './types.js';

const BENCHES: Record<string, () => Promise<(ctx: BenchContext) => Promise<BenchResult>>> = {
  placement: async () => (await import('./placement.js')).runPlacementBench,
  hops: async () => (await import('./hops.js')).runHopsBench,
  join: async () => (await import('./join.js')).runJoinBench,
  joinStorm: async () => (await import('./joinStorm.js')).runJoinStormBench,
  failover: async () => (await import('./failover.js')).runFailoverBench,
  innerFailover: async () => (await import('./innerFailover.js')).runInnerFailoverBench,
  layerLoss: async () => (await import('./layerLoss.js')).runLayerLossBench,
  capacity: async () => (await import('./capacity.js')).runCapacityBench,
  tree: async () => (await import('./tree.js')).runTreeBench,
  integrity: async () => (await import('./integrity.js')).runIntegrityBench,
};

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
/**
 * The results BENCHMARKS.md was last written from, kept in git beside it: bench-results/ is not,
 * so on a fresh clone a run with --only would otherwise drop every section it did not re-run.
 */
const CARRIED = 'BENCHMARKS.json';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ids = values.only ? values.only.split(',') : Object.keys(BENCHES);
const unknown = ids.filter((id) => !BENCHES[id]);
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(64);
}
const ctx: BenchContext = { root, scale: values.quick ? 'quick' : 'full', log: (l) => console.log(`  ${l}`) };
const results: BenchResult[] = [];
const failed: { id: string; error: string }[] = [];
for (const id of ids) {
  console.log(`\n== ${id} (${ctx.scale})`);
  try {
    const run = await BENCHES[id]!();
    const r = await run(ctx);
    results.push(r);
    for (const f of r.figures) {
      console.log(`  ${f.name}: ${fmt(f.value)} ${f.unit}  vs  ${f.baseline.name}: ${fmt(f.baseline.value)} ${f.baseline.unit}  →  ratio ${f.ratio.toFixed(2)}`);
    }
    for (const w of r.warnings) console.log(`  ! ${w}`);
  } catch (err) {
    console.error(`  FAILED: ${(err as Error).stack ?? err}`);
    failed.push({ id, error: (err as Error).message });
  }
}
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
if (!values['no-write']) {
  const dir = path.join(root, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `${stamp}.json`);
  writeFileSync(file, JSON.stringify({ machine: machineInfo(), date: new Date().toISOString(), command, scale: ctx.scale, results, failed }, null, 2));
  if (ctx.scale === 'full' || process.env.CASCADE_BENCH_WRITE_MD === '1') {
    const latest = latestResults(dir, ctx.scale);
    writeFileSync(path.join(root, 'BENCHMARKS.md'), renderBenchmarksMd({ results: latest, failed, command, date: new Date() }));
    writeFileSync(path.join(root, CARRIED), JSON.stringify(latest, null, 1) + '\n');
    console.log(`\nwrote ${file}, BENCHMARKS.md and ${CARRIED}`);
  } else {
    console.log(`\nwrote ${file} (quick runs do not update BENCHMARKS.md)`);
  }
}
process.exit(failed.length ? 1 : 0);

/** The newest result of each benchmark: those BENCHMARKS.md shows, then the full runs kept in `dir`, in runner order. */
function latestResults(dir: string, scale: string): DatedResult[] {
  const latest = new Map<string, DatedResult>();
  try {
    for (const r of JSON.parse(readFileSync(path.join(root, CARRIED), 'utf8')) as DatedResult[]) latest.set(r.result.id, r);
  } catch {
    // none yet, or unreadable: the runs in `dir` alone
  }
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    try {
      const run = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { date: string; command: string; scale?: string; results: DatedResult['result'][] };
      if ((run.scale ?? 'full') !== scale) continue;
      for (const r of run.results) {
        const known = latest.get(r.id);
        if (!known || known.date <= run.date) latest.set(r.id, { result: r, date: run.date, command: run.command });
      }
    } catch {
      // a file from an older format or a broken run: skip it
    }
  }
  return Object.keys(BENCHES).flatMap((id) => (latest.has(id) ? [latest.get(id)!] : []));
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? Math.round(v).toString() : v.toFixed(2);
}
