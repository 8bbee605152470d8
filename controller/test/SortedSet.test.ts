import { describe, expect, it } from 'vitest';
import { seededRandom } from '../src/sim/placementSim.js';
import { SortedSet } from '../src/store/SortedSet.js';

const members = (s: SortedSet) => [...s.ascending()].map(([m]) => m);

describe('SortedSet', () => {
  it('iterates by ascending score, ties by member name (as a Redis ZSET)', () => {
    const s = new SortedSet();
    s.set('c', 2);
    s.set('b', 1);
    s.set('a', 2);
    s.set('d', 0);
    expect([...s.ascending()]).toEqual([
      ['d', 0],
      ['b', 1],
      ['a', 2],
      ['c', 2],
    ]);
    expect(s.first()).toEqual(['d', 0]);
    expect(s.size).toBe(4);
  });

  it('set() moves a member and delete() removes it', () => {
    const s = new SortedSet();
    for (const [m, v] of [['a', 1], ['b', 2], ['c', 3]] as const) s.set(m, v);
    s.set('a', 5);
    expect(s.delete('b')).toBe(true);
    expect(s.delete('b')).toBe(false);
    expect(members(s)).toEqual(['c', 'a']);
    expect(s.score('a')).toBe(5);
    expect(s.score('b')).toBeUndefined();
  });

  it('ascending() resumes after the last member yielded when the set changes while iterating', () => {
    const s = new SortedSet();
    for (const [m, v] of [['a', 1], ['b', 2], ['c', 3], ['d', 4]] as const) s.set(m, v);
    const seen: string[] = [];
    for (const [m] of s.ascending()) {
      seen.push(m);
      if (m === 'a') s.delete('b');
      if (m === 'c') s.set('a', 10); // moves past d: seen again at the end
    }
    expect(seen).toEqual(['a', 'c', 'd', 'a']);
  });

  it('stays ordered as a ZSET would through any sequence of set() and delete()', () => {
    const random = seededRandom(11);
    const s = new SortedSet();
    const reference = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const m = `m${Math.floor(random() * 40)}`;
      if (random() < 0.2) {
        expect(s.delete(m)).toBe(reference.delete(m));
      } else {
        // Few distinct scores, so that ties and moves by one place are common.
        const v = Math.floor(random() * 8);
        s.set(m, v);
        reference.set(m, v);
      }
      if (i % 50 === 0) {
        const expected = [...reference].sort(([am, as], [bm, bs]) => as - bs || (am < bm ? -1 : am > bm ? 1 : 0));
        expect([...s.ascending()]).toEqual(expected);
      }
    }
  });
});
