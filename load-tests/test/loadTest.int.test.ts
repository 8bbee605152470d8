import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startServer, type NodeProcess } from '@cascade/testing';
import type { LoadTestReport } from '../src/LoadTestTypes.js';

/**
 * The load tester end to end against a real origin: its own ffmpeg/werift broadcaster, a few
 * werift viewers in a child process and one decoding Chromium page. Asserts that every measure
 * has data, never how fast anything was (this box is shared and small).
 */
let origin: NodeProcess;
let outDir: string;
let report: LoadTestReport;
let cli: { code: number | null; output: string };

/** Run the built CLI; the test's own timeout bounds it, and a kill ends it if the test is torn down. */
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

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_LOG_LEVEL: 'warn' } });
  outDir = mkdtempSync(path.join(tmpdir(), 'cascade-loadtest-'));
  cli = await runCli(['--url', origin.url, '--broadcast', '--viewers', '6', '--decoders', '1', '--duration', '10', '--ramp', '10/s', '--out', outDir, '--no-progress']);
  if (existsSync(path.join(outDir, 'report.json'))) report = JSON.parse(readFileSync(path.join(outDir, 'report.json'), 'utf8')) as LoadTestReport;
});

afterAll(async () => {
  await origin?.stop();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe('load-test CLI against a real origin', () => {
  it('exits 0 and writes report.json and a self-contained report.html', () => {
    expect(cli.code, cli.output).toBe(0);
    expect(cli.output).toContain('Report: ');
    const html = readFileSync(path.join(outDir, 'report.html'), 'utf8');
    expect(html).toContain('<svg ');
    expect(html).not.toMatch(/<script/i);
  });

  it('every simulated viewer joined through the SDK and received stamped video', () => {
    expect(report.broadcaster).toMatchObject({ kind: 'ffmpeg', stamped: true });
    expect(report.summary.viewers).toMatchObject({ target: 6, started: 6, joined: 6, failed: 0 });
    expect(report.viewers).toHaveLength(6);
    for (const v of report.viewers) {
      expect(v.ok, JSON.stringify(v.error)).toBe(true);
      expect(v.nodeId).toBeTruthy();
      expect(v.rtp!.packets).toBeGreaterThan(0);
      expect(v.rtp!.frames).toBeGreaterThan(0);
      expect(v.rtp!.delay!.count).toBeGreaterThan(0);
    }
  });

  it('has a summary for every per-viewer measure', () => {
    const s = report.summary;
    for (const [name, m] of Object.entries({
      joinMs: s.joinMs,
      firstPacketMs: s.firstPacketMs,
      firstFrameMs: s.firstFrameMs,
      bitrateKbps: s.bitrateKbps,
      lossPct: s.lossPct,
      jitterMs: s.jitterMs,
      freezesPerViewer: s.freezesPerViewer,
      freezeMsPerViewer: s.freezeMsPerViewer,
      delayMs: s.delayMs,
    })) {
      expect(m, name).not.toBeNull();
      expect(m!.count, name).toBeGreaterThan(0);
      for (const k of ['p50', 'p95', 'p99'] as const) expect(Number.isFinite(m![k]), `${name}.${k}`).toBe(true);
    }
    expect(s.bitrateKbps!.p50).toBeGreaterThan(0);
    expect(s.delayMs!.p50).toBeGreaterThanOrEqual(0);
    expect(s.lossPctOverall).not.toBeNull();
    expect(report.delayHistogram.count).toBeGreaterThan(0);
  });

  it('has a timeline with viewers connected and media received', () => {
    expect(report.timeline.length).toBeGreaterThan(0);
    expect(report.timeline.some((p) => p.connected > 0)).toBe(true);
    expect(report.timeline.some((p) => p.rxKbps > 0)).toBe(true);
    expect(report.timeline.some((p) => p.delayP50Ms !== null)).toBe(true);
    expect(report.timeline.some((p) => p.hostCpuPct !== null)).toBe(true);
  });

  it('scraped the origin: CPU, memory, consumers, bytes out', () => {
    const originSeries = report.nodes.find((n) => n.kind === 'origin');
    expect(originSeries).toBeDefined();
    const samples = originSeries!.samples;
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.some((x) => x.cpuCores !== null)).toBe(true);
    expect(samples.some((x) => x.rssBytes !== null && x.rssBytes > 0)).toBe(true);
    expect(samples.some((x) => (x.consumers ?? 0) > 0)).toBe(true);
    expect(samples.some((x) => (x.bitrateOutKbps ?? 0) > 0)).toBe(true);
    const n = report.summary.nodes.find((x) => x.id === originSeries!.id)!;
    expect(n.servedViewers).toBe(6);
    expect(n.cpuPerViewerPct).not.toBeNull();
  });

  it('recorded the viewer processes’ CPU', () => {
    expect(report.generator.length).toBeGreaterThan(0);
    expect(report.generator[0]!.samples.length).toBeGreaterThan(0);
    expect(report.summary.generator.cpuPctPerProcess).not.toBeNull();
  });

  it('the decoding Chromium viewer decoded frames and measured render delay', () => {
    expect(report.decoders).toHaveLength(1);
    const d = report.decoders[0]!;
    expect(d.ok, d.error).toBe(true);
    expect(d.joinMs).not.toBeNull();
    expect(d.firstFrameMs).not.toBeNull();
    const last = d.samples[d.samples.length - 1]!;
    expect(last.framesDecoded).toBeGreaterThan(0);
    expect(last.frameWidth).toBeGreaterThan(0);
    expect(d.renderDelay).not.toBeNull();
  });
});
