import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@cascade/testing';

/**
 * The load sink's own unit tests (load-tests/sink/*_test.go: RTP accounting, NACK list, RTP
 * header and SDP parsing, the histogram shared with LogHistogram.ts), run by `go test`
 * through the offline build script. No network: Go builds from Debian's packages.
 */
describe('load sink (Go)', () => {
  it('passes go vet and go test', async () => {
    const out = await new Promise<{ code: number; text: string }>((resolve) => {
      execFile('bash', [path.join(REPO_ROOT, 'scripts', 'build-sink.sh')], { env: { ...process.env, SINK_TEST: '1' }, timeout: 280_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, text: `${stdout}\n${stderr}` }),
      );
    });
    expect(out.code, out.text).toBe(0);
    expect(out.text).toMatch(/^ok\s/m);
  }, 300_000);
});
