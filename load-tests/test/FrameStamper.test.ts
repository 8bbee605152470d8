import { describe, expect, it } from 'vitest';
import { FrameStamper } from '../src/FrameStamper.js';

describe('FrameStamper', () => {
  it('stamps wall-clock ms × 90 and gives all packets of one frame the same stamp', () => {
    let now = 1_000_000.4;
    const s = new FrameStamper(() => now);
    const a = s.stamp(5000);
    now += 3;
    expect(s.stamp(5000)).toBe(a);
    expect(a).toBe(Math.round(1_000_000.4 * 90) >>> 0);
    now += 30;
    expect(s.stamp(8000)).toBe(Math.round(1_000_033.4 * 90) >>> 0);
  });

  it('keeps stamps increasing when two frames share a clock reading or the clock steps back', () => {
    let now = 5000;
    const s = new FrameStamper(() => now);
    const a = s.stamp(1);
    const b = s.stamp(2);
    now -= 10;
    const c = s.stamp(3);
    expect(b).toBe(a + 1);
    expect(c).toBe(b + 1);
  });

  it('wraps modulo 2^32 like RTP timestamps', () => {
    let now = 2 ** 32 / 90 - 0.5;
    const s = new FrameStamper(() => now);
    const a = s.stamp(1);
    now += 1;
    const b = s.stamp(2);
    expect(a).toBeGreaterThan(2 ** 32 - 100);
    expect(b).toBeLessThan(100);
  });

  it('ignores the source timestamp jump at the clip loop', () => {
    let now = 1000;
    const s = new FrameStamper(() => now);
    s.stamp(900_000);
    now += 33;
    expect(s.stamp(0)).toBe(Math.round(1033 * 90));
  });
});
