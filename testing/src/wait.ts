/**
 * Polling for "it eventually happens" in integration tests and the benchmark scripts.
 *
 * Why not vitest's `vi.waitFor` / `expect.poll` (which tests use where they fit): this one
 * waits for a *truthy* value and returns it (`const node = await waitFor(() => find(...))`;
 * vi.waitFor resolves on the first call that does not throw, expect.poll returns no value),
 * its default ceiling (20 s) suits real processes on a loaded machine (vi.waitFor's is 1 s),
 * its error names what was awaited and the last value seen, and it runs outside vitest too:
 * the benchmark scripts (load-tests/src/bench) use it under plain node.
 * Timeouts here are generous ceilings, never performance claims. Plain sleeps are
 * `setTimeout` from node:timers/promises.
 */
import { setTimeout as delay } from 'node:timers/promises';

export async function waitFor<T>(
  fn: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      last = await fn();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${options.what ?? 'condition'} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await delay(options.intervalMs ?? 100);
  }
}

/**
 * The value `fn` settles on: the same (by JSON) `samples` times in a row, `intervalMs` apart.
 * For baselines of counts that a node finishes changing shortly after an event (stream
 * integrity opens its digest tap and channel within the first batch period of a stream).
 */
export async function settled<T>(fn: () => T | Promise<T>, options: { samples?: number; intervalMs?: number; timeoutMs?: number; what?: string } = {}): Promise<T> {
  let last = '';
  let same = 0;
  let value: T | undefined;
  await waitFor(
    async () => {
      value = await fn();
      const json = JSON.stringify(value);
      same = json === last ? same + 1 : 0;
      last = json;
      return same >= (options.samples ?? 3);
    },
    { intervalMs: options.intervalMs ?? 200, timeoutMs: options.timeoutMs ?? 20_000, what: options.what ?? 'a settled value' },
  );
  return value as T;
}
