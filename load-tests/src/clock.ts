import { setTimeout as delay } from 'node:timers/promises';

/**
 * Wall clock with sub-ms resolution. The broadcaster's stamps and the viewers' arrival times
 * both use it; Date.now() alone would add up to 1 ms of rounding to loopback delays of 1–2 ms.
 */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolve after `ms`, or at once if `signal` aborts (resolve, not reject: the caller checks the signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  // The only rejection of node's timer is the AbortError.
  return delay(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}
