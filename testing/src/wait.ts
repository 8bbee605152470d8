/**
 * Poll `fn` until it returns a truthy value; reject with the last value after `timeoutMs`.
 * Timeouts here are generous ceilings for "it eventually happens", never performance claims.
 */
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
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
