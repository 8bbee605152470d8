#!/usr/bin/env node
/**
 * `npm run load-test -- --url http://host:8080 --viewers 500 --broadcast …` (see USAGE).
 * The composition root: the only file that reads process.env and argv.
 */
import { defaultCacheDir } from './clip.js';
import { LoadTest } from './LoadTest.js';
import { parseCliArgs, USAGE, UsageError } from './options.js';
import { defaultReportDir, writeReport } from './report/write.js';
import { formatSummary } from './summaryText.js';

let options;
try {
  options = parseCliArgs(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`${err.message}\n\n${USAGE}`);
  process.exit(64); // EX_USAGE
}
if (!options) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const abort = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  // First Ctrl-C: stop the test and still write the report. Second: leave now.
  if (++interrupts > 1) process.exit(130);
  process.stderr.write('\nstopping (Ctrl-C again to quit without a report)…\n');
  abort.abort();
});
process.on('SIGTERM', () => abort.abort());

// Every step below has its own bound; this one catches whatever slips through them.
const hardStop = setTimeout(() => {
  process.stderr.write('load test: hard deadline reached, exiting without a report\n');
  process.exit(2);
}, (options.durationSec + 180) * 1000);
hardStop.unref();

const startedAt = new Date();
const outDir = options.outDir ?? defaultReportDir(process.cwd(), startedAt);
try {
  const report = await new LoadTest(options, {
    print: (line) => process.stdout.write(`${line}\n`),
    cacheDir: defaultCacheDir(process.env.XDG_CACHE_HOME),
    signal: abort.signal,
  }).run();
  const files = writeReport(report, outDir);
  process.stdout.write(`\n${formatSummary(report)}\n\nReport: ${files.html}\nRaw data: ${files.json}\n`);
  process.exit(0);
} catch (err) {
  process.stderr.write(`load test failed: ${(err as Error).message}\n`);
  process.exit(1);
}
