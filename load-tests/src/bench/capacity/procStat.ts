import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Readers for the Linux /proc counters the capacity benchmark measures with, and the
 * taskset calls that pin processes. Linux only (the benchmark is).
 */

let clkTck: number | undefined;

/** Kernel clock ticks per second (USER_HZ), for /proc/<pid>/stat times. Almost always 100. */
export function clockTicksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/**
 * CPU seconds (user + system) a process has used so far, all its threads together, or
 * null once it is gone.
 */
export function processCpuSeconds(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  return parseProcStatCpuTicks(text) / clockTicksPerSecond();
}

/** utime + stime (ticks) from the text of /proc/<pid>/stat. The command name may hold spaces and ')'. */
export function parseProcStatCpuTicks(text: string): number {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  return Number(rest[11]) + Number(rest[12]);
}

/** Cumulative times of one core from /proc/stat, in ticks. */
export interface CoreTimes {
  busy: number;
  total: number;
  softirq: number;
  /** Time the hypervisor ran something else while this virtual core wanted to run. */
  steal: number;
}

/** Per-core times from /proc/stat, indexed by core number. */
export function readCoreTimes(): CoreTimes[] {
  return parseProcStat(readFileSync('/proc/stat', 'utf8'));
}

export function parseProcStat(text: string): CoreTimes[] {
  const cores: CoreTimes[] = [];
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
    const v = m[2]!.trim().split(/\s+/).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    cores[Number(m[1])] = { busy: total - idle, total, softirq: v[6] ?? 0, steal: v[7] ?? 0 };
  }
  return cores;
}

/** Busy, softirq and steal shares (0..1) of each core between two readings. */
export function coreBusyShares(a: CoreTimes[], b: CoreTimes[]): { busy: number; softirq: number; steal: number }[] {
  return b.map((cb, i) => {
    const ca = a[i];
    const total = ca ? cb.total - ca.total : 0;
    if (!ca || total <= 0) return { busy: 0, softirq: 0, steal: 0 };
    return { busy: (cb.busy - ca.busy) / total, softirq: (cb.softirq - ca.softirq) / total, steal: (cb.steal - ca.steal) / total };
  });
}

/** Pins every thread of `pid` to `core` (taskset -a -p). Threads created later inherit it. */
export function pinProcess(pid: number, core: number): void {
  pinProcessCores(pid, String(core));
}

/** Pins every thread of `pid` to a core list ("1", "0-1"). */
export function pinProcessCores(pid: number, cores: string): void {
  execFileSync('taskset', ['-a', '-pc', cores, String(pid)], { stdio: 'ignore', timeout: 5000 });
}

/** The cores a process may run on, as the kernel reports it ("0", "1", "0-1"), or null. */
export function allowedCpus(pid: number): string | null {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? m[1]! : null;
  } catch {
    return null;
  }
}

/** Child pids of `pid` (its main thread's children), from /proc. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process's command name (/proc/<pid>/comm, at most 15 characters), or null once it is gone. */
export function processName(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** The 1-minute load average, for the report. */
export function loadAverage1(): number | null {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}
