import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file is load-tests/{src,dist}/sink.*). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The sink cannot be built or found; the message says which package or step is missing. */
export class SinkUnavailableError extends Error {
  override readonly name = 'SinkUnavailableError';
  readonly code = 'CASCADE_ERR_LOADTEST_SINK_UNAVAILABLE';
}

/**
 * The load sink's binary (load-tests/sink, Go): scripts/build-sink.sh builds it once per
 * source version (scripts/setup.sh test does it ahead), and answers at once when it is there.
 */
export function ensureSink(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const script = path.join(ROOT, 'scripts', 'build-sink.sh');
  return new Promise((resolve, reject) => {
    execFile('bash', [script], { env, timeout: 300_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const bin = stdout.trim().split('\n').pop() ?? '';
      if (err || !bin || !existsSync(bin)) {
        reject(
          new SinkUnavailableError(
            `the load sink could not be built (${err?.message ?? 'no binary'}): ${stderr.trim().split('\n').slice(-5).join(' | ')}. ` +
              'It needs Debian\'s golang-go and golang-github-pion-webrtc.v3-dev (bash scripts/setup.sh test installs them).',
          ),
        );
      } else resolve(bin);
    });
  });
}
