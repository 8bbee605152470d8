import { describe, expect, it } from 'vitest';
import { LogBudget } from '../src/LogBudget.js';

describe('LogBudget', () => {
  it('lets a burst through, then perSec lines a second, and reports what it left out', () => {
    let now = 0;
    const b = new LogBudget(2, { burst: 3, now: () => now });
    expect([b.take(), b.take(), b.take()]).toEqual([0, 0, 0]);
    expect([b.take(), b.take()]).toEqual([undefined, undefined]);
    expect(b.suppressed).toBe(2);
    now += 500; // one line's worth at 2/s
    expect(b.take()).toBe(2);
    expect(b.take()).toBeUndefined();
    expect(b.suppressed).toBe(1);
  });

  it('never holds more than its burst, however long it was quiet', () => {
    let now = 0;
    const b = new LogBudget(10, { burst: 2, now: () => now });
    now += 60_000;
    expect([b.take(), b.take(), b.take()]).toEqual([0, 0, undefined]);
  });

  it('keeps one budget per kind: a flood of one kind does not hide the first of another', () => {
    let now = 0;
    const b = new LogBudget(1, { burst: 2, now: () => now });
    expect([b.take('A'), b.take('A'), b.take('A'), b.take('A')]).toEqual([0, 0, undefined, undefined]);
    expect(b.take('B')).toBe(0);
    expect(b.suppressed).toBe(2);
    now += 1000;
    expect(b.take('A')).toBe(2);
  });

  it('perSec 0 logs nothing and counts everything', () => {
    const b = new LogBudget(0);
    for (let i = 0; i < 5; i++) expect(b.take()).toBeUndefined();
    expect(b.suppressed).toBe(5);
  });
});
