import { cpus } from 'node:os';

/**
 * Machine-wide CPU use between two calls, from os.cpus() tick counters. The load generator,
 * the broadcaster and often the server share the machine: when it is saturated, delay and
 * loss describe the machine, not the server, and the report says so.
 */
export class HostCpu {
  #last = HostCpu.#read();

  /** Busy share of all cores since the previous call, 0..100 (%), or null if no time passed. */
  sample(): number | null {
    const now = HostCpu.#read();
    const busy = now.busy - this.#last.busy;
    const total = now.total - this.#last.total;
    this.#last = now;
    return total > 0 ? (busy / total) * 100 : null;
  }

  static #read(): { busy: number; total: number } {
    let busy = 0;
    let total = 0;
    for (const c of cpus()) {
      const t = c.times;
      const all = t.user + t.nice + t.sys + t.irq + t.idle;
      total += all;
      busy += all - t.idle;
    }
    return { busy, total };
  }
}
