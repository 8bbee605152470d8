import { describe, expect, it } from 'vitest';
import { dueJoins, split } from '../src/ramp.js';

describe('dueJoins()', () => {
  it('starts the first join at once, then one per 1/rate s, capped at the total', () => {
    expect(dueJoins(0, 20, 100)).toBe(1);
    expect(dueJoins(49, 20, 100)).toBe(1);
    expect(dueJoins(50, 20, 100)).toBe(2);
    expect(dueJoins(1000, 20, 100)).toBe(21);
    expect(dueJoins(60_000, 20, 100)).toBe(100);
  });

  it('is 0 with nothing to start', () => {
    expect(dueJoins(1000, 20, 0)).toBe(0);
    expect(dueJoins(-5, 20, 10)).toBe(0);
  });
});

describe('split()', () => {
  it('spreads viewers over processes, differing by at most one', () => {
    expect(split(500, 3)).toEqual([167, 167, 166]);
    expect(split(2, 4)).toEqual([1, 1, 0, 0]);
    expect(split(10, 1)).toEqual([10]);
  });
});
