import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@cascade/testing';
import { runCapacityBench, type ScaleSettings } from '../../src/bench/capacity.js';
import { JanusStreaming } from '../../src/bench/capacity/JanusStreaming.js';
import { runRealRamp } from '../../src/bench/capacity/realRamp.js';
import { ensureAvClip } from '../../src/clip.js';
import { ensureSink } from '../../src/sink.js';

/**
 * The capacity benchmark's own code on a tiny run (20 viewers in two steps): real servers,
 * real sink viewers, the whole measurement and report path. It asserts that every ramp is
 * measured and ends for a named reason, never how many viewers a core holds.
 */
const TINY: ScaleSettings = {
  bitratesKbps: [500],
  repetitions: 1,
  plan: { firstStep: 10, minStep: 10, maxStep: 10, cpuPerStep: 0.05, maxViewers: 20 },
  joinRatePerSec: 20,
  settleMs: 1500,
  windowMs: 1500,
  rampBudgetMs: 60_000,
  totalBudgetMs: 120_000,
  variants: false,
};

function janusInstalled(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v janus'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('capacity benchmark (tiny run)', () => {
  it('measures Cascade’s ramp, says why it stopped, and without Janus keeps Cascade’s figures with a clear warning', async () => {
    const lines: string[] = [];
    const r = await runCapacityBench({ root: REPO_ROOT, scale: 'quick', log: (l) => lines.push(l) }, { scale: TINY, janusBin: '/nonexistent/janus' });
    expect(r.id).toBe('capacity');
    expect(r.warnings.some((w) => w.startsWith('NO PEER BASELINE') && w.includes('/nonexistent/janus'))).toBe(true);
    const [capacity, perPacket, join] = r.figures;
    expect(capacity!.value).toBeGreaterThan(0);
    expect(Number.isNaN(capacity!.baseline.value)).toBe(true);
    expect(Number.isNaN(capacity!.ratio)).toBe(true);
    expect(perPacket!.value).toBeGreaterThan(0);
    expect(join!.value).toBeGreaterThanOrEqual(0);
    const ramps = (r.details as { ramps: { label: string; stopReason: string; steps: { viewers: number; ppsPerViewer: number; cpuPct: number }[]; join: { count: number } }[] }).ramps;
    expect(ramps).toHaveLength(1);
    const ramp = ramps[0]!;
    expect(ramp.label).toBe('cascade 500 kbit/s #1');
    expect(ramp.stopReason.length, lines.join('\n')).toBeGreaterThan(0);
    expect(ramp.stopReason).not.toMatch(/^error/);
    expect(ramp.steps.length).toBeGreaterThan(0);
    for (const st of ramp.steps) {
      expect(st.ppsPerViewer).toBeGreaterThan(0);
      expect(st.cpuPct).toBeGreaterThan(0);
    }
    expect(ramp.join.count).toBeGreaterThanOrEqual(10);
    // BENCHMARKS.md gets every ramp with its stop reason.
    expect(r.markdown).toContain('| cascade 500 kbit/s #1 |');
    expect(r.markdown).toContain(ramp.stopReason.replace(/\|/g, '/'));
  });

  it.skipIf(!janusInstalled())('ramps Janus’s Streaming plugin with sink viewers through its WebSocket API', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cascade-janus-'));
    try {
      const clip = await ensureAvClip(500);
      const run = await runRealRamp({
        label: 'janus tiny',
        startTarget: () => JanusStreaming.start({ core: 0, feedCore: 1, dir, clip, deadlineSec: 120 }),
        sinkBin: await ensureSink(),
        sinkConfig: { pingMs: 1000, twcc: true, pollMs: 20 },
        sinkProcesses: 1,
        serverCore: 0,
        loadCore: 1,
        limits: { maxLoss: 0.01, maxCpu: 0.85 },
        plan: TINY.plan,
        joinRatePerSec: 20,
        settleMs: 1500,
        windowMs: 1500,
        budgetMs: 60_000,
        log: () => {},
      });
      expect(run.kind).toBe('janus');
      expect(run.stopReason).not.toMatch(/^error/);
      expect(run.steps.length).toBeGreaterThan(0);
      expect(run.steps[0]!.media.ppsPerViewer).toBeGreaterThan(0);
      expect(run.join.count).toBeGreaterThanOrEqual(10);
      expect(run.target.version).toMatch(/^1\./);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
