import { describe, expect, it } from 'vitest';
import { coreBusyShares, parseProcStat, parseProcStatCpuTicks } from '../../src/bench/capacity/procStat.js';

describe('parseProcStatCpuTicks()', () => {
  it('adds utime and stime, even when the command name holds spaces and parentheses', () => {
    const stat = '4242 (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 567 0 0 20 0 3 0 100 0 0';
    expect(parseProcStatCpuTicks(stat)).toBe(1234 + 567);
  });
});

describe('parseProcStat() and coreBusyShares()', () => {
  const a = ['cpu  10 0 10 80 0 0 0 0 0 0', 'cpu0 5 0 5 40 0 0 0 0 0 0', 'cpu1 5 0 5 40 0 0 0 0 0 0', 'intr 1'].join('\n');
  const b = ['cpu  40 0 30 130 0 0 0 0 0 0', 'cpu0 35 0 15 40 0 0 10 0 0 0', 'cpu1 5 0 5 90 0 0 0 5 0 0'].join('\n');

  it('reads each core, counting idle and iowait as not busy', () => {
    expect(parseProcStat(a)).toEqual([
      { busy: 10, total: 50, softirq: 0, steal: 0 },
      { busy: 10, total: 50, softirq: 0, steal: 0 },
    ]);
  });

  it('gives each core’s busy, softirq and steal share between two readings', () => {
    const shares = coreBusyShares(parseProcStat(a), parseProcStat(b));
    expect(shares[0]).toEqual({ busy: 1, softirq: 0.2, steal: 0 });
    // Stolen time counts as busy: the core wanted to run and could not.
    expect(shares[1]).toEqual({ busy: 5 / 55, softirq: 0, steal: 5 / 55 });
  });
});
