// The whole suite, one project after the other (integration and end-to-end tests start real
// processes; running them alongside each other on 2 cores only makes them slower).
import { spawnSync } from 'node:child_process';

const only = process.argv.slice(2);
const projects = only.length ? only : ['unit', 'int', 'e2e'];
const results = [];
// vitest does not type-check; the sources are checked by the build, the tests here.
if (!only.length) {
  const started = Date.now();
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.test.json'], { stdio: 'inherit' });
  results.push({ project: 'types', ok: r.status === 0, seconds: Math.round((Date.now() - started) / 1000) });
}
for (const p of projects) {
  const started = Date.now();
  const r = spawnSync('npx', ['vitest', 'run', '--project', p], { stdio: 'inherit' });
  results.push({ project: p, ok: r.status === 0, seconds: Math.round((Date.now() - started) / 1000) });
}
console.log('\nCascade test summary');
for (const r of results) console.log(`  ${r.ok ? 'PASS' : 'FAIL'}  ${r.project.padEnd(5)} ${r.seconds}s`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
