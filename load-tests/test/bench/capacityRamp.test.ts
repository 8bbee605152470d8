import { describe, expect, it } from 'vitest';
import {
  limitBreaches,
  linearFit,
  nextStepSize,
  spread,
  summarizeRamp,
  type RampLimits,
  type StepPlan,
} from '../../src/bench/capacity/ramp.js';

const LIMITS: RampLimits = { maxLoss: 0.01, maxCpu: 0.85 };
const PLAN: StepPlan = { firstStep: 100, minStep: 25, maxStep: 500, cpuPerStep: 0.08, maxViewers: 6000 };

describe('linearFit()', () => {
  it('fits cpu against viewers', () => {
    const fit = linearFit([
      { viewers: 0, cpu: 0.02 },
      { viewers: 100, cpu: 0.32 },
      { viewers: 200, cpu: 0.62 },
    ])!;
    expect(fit.slope).toBeCloseTo(0.003);
    expect(fit.intercept).toBeCloseTo(0.02);
    expect(fit.r2).toBeCloseTo(1);
  });

  it('is null without two distinct viewer counts', () => {
    expect(linearFit([{ viewers: 5, cpu: 0.1 }])).toBeNull();
    expect(linearFit([{ viewers: 5, cpu: 0.1 }, { viewers: 5, cpu: 0.2 }])).toBeNull();
  });
});

describe('nextStepSize()', () => {
  it('starts with the first step', () => {
    expect(nextStepSize([{ viewers: 0, cpu: 0.02 }], PLAN, LIMITS)).toBe(100);
  });

  it('sizes later steps from the CPU per viewer seen so far', () => {
    // 0.3 % of a core per viewer: 0.08 / 0.003 ≈ 27 viewers
    const pts = [
      { viewers: 0, cpu: 0.02 },
      { viewers: 100, cpu: 0.32 },
    ];
    expect(nextStepSize(pts, PLAN, LIMITS)).toBe(27);
  });

  it('shrinks steps near the CPU limit, but not below a third of a normal step or minStep', () => {
    const pts = [
      { viewers: 0, cpu: 0 },
      { viewers: 1000, cpu: 0.8 },
    ];
    // slope 0.0008; headroom 0.05 → 0.025 of a core, above 0.08/3 → no: max(0.025, 0.0267) = 0.0267 → 33
    expect(nextStepSize(pts, PLAN, LIMITS)).toBe(33);
    const steep = [
      { viewers: 0, cpu: 0 },
      { viewers: 10, cpu: 0.8 },
    ];
    expect(nextStepSize(steep, PLAN, LIMITS)).toBe(25);
  });

  it('is capped by maxStep and by the viewers left', () => {
    const flat = [
      { viewers: 0, cpu: 0.01 },
      { viewers: 100, cpu: 0.011 },
    ];
    expect(nextStepSize(flat, PLAN, LIMITS)).toBe(500);
    expect(nextStepSize([{ viewers: 5990, cpu: 0.5 }], PLAN, LIMITS)).toBe(10);
    expect(nextStepSize([{ viewers: 6000, cpu: 0.5 }], PLAN, LIMITS)).toBe(0);
  });
});

describe('limitBreaches()', () => {
  it('names each limit a sample exceeds', () => {
    expect(limitBreaches({ cpu: 0.5, loss: 0 }, LIMITS)).toEqual([]);
    expect(limitBreaches({ cpu: 0.86, loss: 0.02 }, LIMITS)).toEqual(['cpu 86.0 % > 85 %', 'loss 2.00 % > 1 %']);
  });
});

describe('summarizeRamp()', () => {
  it('reports the last step under both limits and the CPU per viewer over the passing steps', () => {
    const s = summarizeRamp(
      [
        { viewers: 0, cpu: 0.02, loss: 0, passed: true },
        { viewers: 100, cpu: 0.32, loss: 0, passed: true },
        { viewers: 200, cpu: 0.62, loss: 0.001, passed: true },
        { viewers: 280, cpu: 0.9, loss: 0, passed: false },
      ],
      LIMITS,
      true,
    );
    expect(s.viewersPerCore).toBe(200);
    expect(s.cpuPerViewer).toBeCloseTo(0.003);
    expect(s.viewersAtCpuLimit).toBe(277);
    expect(s.saturated).toBe(true);
  });

  it('is 0 viewers when the first step already fails', () => {
    const s = summarizeRamp([{ viewers: 100, cpu: 0.95, loss: 0, passed: false }], LIMITS, true);
    expect(s.viewersPerCore).toBe(0);
    expect(s.cpuPerViewer).toBeNull();
  });
});

describe('spread()', () => {
  it('gives the median, range and relative spread', () => {
    expect(spread([300, 250, 270])).toEqual({ median: 270, min: 250, max: 300, relative: 50 / 270, n: 3 });
    expect(spread([1, 3])!.median).toBe(2);
    expect(spread([])).toBeNull();
  });
});
