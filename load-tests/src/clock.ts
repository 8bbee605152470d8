/**
 * Wall clock with sub-ms resolution. The broadcaster's stamps and the viewers' arrival times
 * both use it; Date.now() alone would add up to 1 ms of rounding to loopback delays of 1–2 ms.
 */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolve after `ms`, or at once if `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
