import { describe, expect, it } from 'vitest';
import { KeyedTokenBucket } from '../src/KeyedTokenBucket.js';

describe('KeyedTokenBucket', () => {
  it('allows a burst per key, then one per refill period', () => {
    const b = new KeyedTokenBucket({ burst: 3, refillMs: 2000 });
    expect([1, 2, 3, 4].map(() => b.take('a', 0))).toEqual([true, true, true, false]);
    expect(b.take('b', 0)).toBe(true);
    expect(b.take('a', 1999)).toBe(false);
    expect(b.take('a', 2000)).toBe(true);
    expect(b.take('a', 2000)).toBe(false);
  });

  it('holds at most maxKeys buckets, forgetting the least recently used', () => {
    const b = new KeyedTokenBucket({ burst: 1, refillMs: 60_000, maxKeys: 2 });
    expect(b.take('a', 0)).toBe(true);
    expect(b.take('b', 0)).toBe(true);
    expect(b.take('a', 1)).toBe(false);
    expect(b.take('c', 2)).toBe(true); // evicts b, the least recently used
    expect(b.take('a', 3)).toBe(false);
    expect(b.take('b', 4)).toBe(true); // b was forgotten: a full bucket again
  });
});
