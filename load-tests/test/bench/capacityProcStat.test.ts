import { describe, expect, it } from 'vitest';
import { coreBusyShares, parseProcNetUdp, parseProcStat, parseProcStatCpuTicks } from '../../src/bench/capacity/procStat.js';

describe('parseProcStatCpuTicks()', () => {
  it('adds utime and stime, even when the command name holds spaces and parentheses', () => {
    const stat = '4242 (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 567 0 0 20 0 3 0 100 0 0';
    expect(parseProcStatCpuTicks(stat)).toBe(1234 + 567);
  });
});

describe('parseProcStat() and coreBusyShares()', () => {
  const a = ['cpu  10 0 10 80 0 0 0 0 0 0', 'cpu0 5 0 5 40 0 0 0 0 0 0', 'cpu1 5 0 5 40 0 0 0 0 0 0', 'intr 1'].join('\n');
  const b = ['cpu  40 0 30 130 0 0 0 0 0 0', 'cpu0 35 0 15 40 0 0 10 0 0 0', 'cpu1 5 0 5 90 0 0 0 0 0 0'].join('\n');

  it('reads each core, counting idle and iowait as not busy', () => {
    expect(parseProcStat(a)).toEqual([
      { busy: 10, total: 50, softirq: 0 },
      { busy: 10, total: 50, softirq: 0 },
    ]);
  });

  it('gives each core’s busy and softirq share between two readings', () => {
    const shares = coreBusyShares(parseProcStat(a), parseProcStat(b));
    expect(shares[0]).toEqual({ busy: 1, softirq: 0.2 });
    expect(shares[1]).toEqual({ busy: 0, softirq: 0 });
  });
});

describe('parseProcNetUdp()', () => {
  it('sums the drops column of the wanted local ports', () => {
    const text = [
      '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
      '  100: 0100007F:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 111 2 0000000000000000 5',
      '  101: 0100007F:9C41 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 112 2 0000000000000000 0',
      '  102: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 113 2 0000000000000000 9',
      '',
    ].join('\n');
    const drops = parseProcNetUdp(text, new Set([40000, 40001]));
    expect([...drops.entries()]).toEqual([
      [40000, 5],
      [40001, 0],
    ]);
  });
});
