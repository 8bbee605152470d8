import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, REPO_ROOT, startServer, waitFor, type NodeProcess } from '@cascade/testing';
import { ensureClip } from '../src/clip.js';
import type { LoadTestReport, ViewerResult } from '../src/LoadTestTypes.js';
import { ensureSink } from '../src/sink.js';
import { SyntheticBroadcaster } from '../src/SyntheticBroadcaster.js';
import { ViewerFleet, type SinkLaunch } from '../src/ViewerFleet.js';

/**
 * The Go load sink against a real origin: 50 sink viewers join through Cascade's signalling
 * (the load-test CLI's `--client sink`) and receive; a sink whose DTLS handshake is lost and
 * viewers of a stream that does not exist fail with clear codes while the origin keeps
 * serving. No figure of speed is asserted.
 */
let origin: NodeProcess;
let caster: SyntheticBroadcaster;
let bin: string;

beforeAll(async () => {
  bin = await ensureSink();
  origin = await startServer({ env: { CASCADE_LOG_LEVEL: 'warn' } });
  const token = (await getJson<{ token: string }>(`${origin.url}/api/dev/token`)).body.token;
  caster = await SyntheticBroadcaster.start(
    { url: origin.url, token, clipPath: await ensureClip(), maxDurationSec: 300 },
    { now: () => performance.timeOrigin + performance.now(), warn: () => {} },
  );
  await waitFor(async () => (await getJson<{ state: string }>(`${origin.url}/api/streams/${caster.streamId}`)).body.state === 'live', {
    what: 'the stream to be live',
  });
});

afterAll(async () => {
  await caster?.stop();
  await origin?.stop();
});

function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(REPO_ROOT, 'load-tests/dist/cli.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-20_000));
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    const guard = setTimeout(() => p.kill('SIGKILL'), 110_000);
    p.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, output });
    });
  });
}

/** A sink fleet of `viewers`, run until every viewer has settled (joined or failed), then stopped. */
async function runFleet(streamId: string, viewers: number, sink: Partial<SinkLaunch> = {}): Promise<ViewerResult[]> {
  const fleet = new ViewerFleet({
    url: origin.url,
    streamId,
    viewers,
    processes: 1,
    rampPerSec: 20,
    durationMs: 60_000,
    stamped: false,
    freezeGapMs: 500,
    joinTimeoutMs: 20_000,
    sink: { bin, ...sink },
  });
  try {
    await fleet.start();
    await waitFor(
      () => {
        const t = fleet.totals();
        return t.connected + t.failed >= viewers;
      },
      { timeoutMs: 60_000, what: 'every sink viewer to join or fail' },
    );
  } catch (err) {
    await fleet.stop();
    throw err;
  }
  return (await fleet.stop()).viewers;
}

describe('load sink against a real origin', () => {
  it('50 sink viewers join through the signalling and all receive over DTLS-SRTP', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'cascade-sink-'));
    try {
      const cli = await runCli(['--url', origin.url, '--stream', caster.streamId, '--client', 'sink', '--viewers', '50', '--decoders', '0', '--duration', '12', '--ramp', '25/s', '--out', out, '--no-progress']);
      expect(cli.code, cli.output).toBe(0);
      expect(existsSync(path.join(out, 'report.json')), cli.output).toBe(true);
      const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as LoadTestReport;
      expect(report.options.client).toBe('sink');
      expect(report.summary.viewers).toMatchObject({ target: 50, started: 50, joined: 50, failed: 0 });
      expect(report.viewers).toHaveLength(50);
      const nodeId = (await getJson<{ node: string }>(`${origin.url}/healthz`)).body.node;
      for (const v of report.viewers) {
        expect(v.ok, JSON.stringify(v.error)).toBe(true);
        expect(v.nodeId).toBe(nodeId);
        expect(v.rtp!.packets, `viewer ${v.index}`).toBeGreaterThan(0);
        expect(v.rtp!.frames).toBeGreaterThan(0);
        const s = v.sink!;
        expect(s.srtpProfile).toBe('AES_CM_128_HMAC_SHA1_80');
        // Sampled decryption proves the keys from the DTLS handshake decrypt what arrives.
        expect(s.decryptOk).toBeGreaterThan(0);
        expect(s.decryptFail).toBe(0);
        // Receiver reports and transport-cc feedback went back.
        expect(s.rtcpOut).toBeGreaterThan(0);
        expect(s.twccPackets).toBeGreaterThan(0);
        expect(s.iceMs).not.toBeNull();
        expect(s.dtlsMs).not.toBeNull();
      }
      // The origin counted them as its own viewers.
      const n = report.summary.nodes.find((x) => x.kind === 'origin')!;
      expect(n.servedViewers).toBe(50);
      expect(n.viewersMax).toBeGreaterThanOrEqual(50);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a sink that loses its DTLS handshake fails with CASCADE_ERR_LOADTEST_DTLS, and the origin keeps serving', async () => {
    const failed = await runFleet(caster.streamId, 3, { config: { faults: { dropDtls: true } } });
    expect(failed).toHaveLength(3);
    for (const v of failed) {
      expect(v.ok).toBe(false);
      expect(v.error?.code).toBe('CASCADE_ERR_LOADTEST_DTLS');
      expect(v.error?.message).toMatch(/DTLS handshake failed/);
    }
    const fine = await runFleet(caster.streamId, 2);
    for (const v of fine) expect(v.ok, JSON.stringify(v.error)).toBe(true);
    expect((await getJson(`${origin.url}/healthz`)).status).toBe(200);
  });

  it('viewers of a stream that does not exist fail with the server’s code', async () => {
    const results = await runFleet('no-such-stream', 2);
    for (const v of results) {
      expect(v.ok).toBe(false);
      expect(v.error?.code).toBe('CASCADE_ERR_STREAM_NOT_FOUND');
    }
  });
});
