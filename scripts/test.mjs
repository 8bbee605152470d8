// The whole suite, one project after the other (integration and end-to-end tests start real
// processes; running them alongside each other on 2 cores only makes them slower).
// The summary at the end names every failed test with the first line of its error: CI keeps
// only the tail of the output, and "FAIL int" alone says nothing about what broke.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';

const only = process.argv.slice(2);
const projects = only.length ? only : ['unit', 'int', 'e2e'];
const results = [];
mkdirSync('test-artifacts', { recursive: true });
// vitest does not type-check; the sources are checked by the build, the tests here.
if (!only.length) {
  const started = Date.now();
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.test.json'], { stdio: 'inherit' });
  results.push({ project: 'types', ok: r.status === 0, seconds: Math.round((Date.now() - started) / 1000), failed: [] });
}
for (const p of projects) {
  const started = Date.now();
  const report = `test-artifacts/vitest-${p}.json`;
  rmSync(report, { force: true });
  const r = spawnSync(
    'npx',
    ['vitest', 'run', '--project', p, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`],
    { stdio: 'inherit' },
  );
  results.push({ project: p, ok: r.status === 0, seconds: Math.round((Date.now() - started) / 1000), failed: failures(report) });
}
console.log('\nCascade test summary');
for (const r of results) {
  console.log(`  ${r.ok ? 'PASS' : 'FAIL'}  ${r.project.padEnd(5)} ${r.seconds}s`);
  for (const f of r.failed) console.log(`        ✗ ${f}`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);

/** "file > test: first line of the error" for each failed test (or failed file) in a JSON report. */
function failures(path) {
  let json;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
  const out = [];
  for (const file of json.testResults ?? []) {
    const name = String(file.name ?? '').replace(`${process.cwd()}/`, '');
    const failedTests = (file.assertionResults ?? []).filter((t) => t.status === 'failed');
    for (const t of failedTests) out.push(`${name} > ${t.fullName ?? t.title}: ${firstLine(t.failureMessages?.[0])}`);
    if (!failedTests.length && file.status === 'failed') out.push(`${name}: ${firstLine(file.message)}`);
  }
  return out;
}

function firstLine(text) {
  return String(text ?? '').split('\n').find((l) => l.trim())?.trim().slice(0, 300) ?? '';
}
