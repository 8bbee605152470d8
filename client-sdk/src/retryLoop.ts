import type { CascadeError, ReconnectPolicy } from '@cascade/protocol';
import { ConnectionError, typedError } from './errors.js';

export interface RetryLoopOptions<T> {
  policy: ReconnectPolicy;
  /** The session was stopped by its owner: end quietly. */
  stopped(): boolean;
  /** One attempt (connect again, join again). */
  attempt(): Promise<T>;
  /** An attempt failed with `err`: true to try again, false to give up with it. */
  retryable(err: CascadeError, retryCount: number): boolean;
  /** Injected so that the loop runs on fake time in tests. */
  clock?: { now(): number; sleep(ms: number): Promise<void> };
}

const realClock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };

/**
 * The reconnect loop `Watch` and `Broadcast` share: ask the policy for a delay, wait, attempt,
 * until an attempt succeeds (its result), the owner stops (undefined), or the episode ends with
 * a typed error (thrown): an error not worth retrying, the policy giving up (`null`), or the
 * policy itself throwing (an application's policy is code we do not control; as LiveKit guards
 * its `getNextRetryDelay`, its exception ends the episode as CASCADE_ERR_CLIENT_CONNECTION
 * rather than escaping as an unhandled rejection).
 */
export async function retryLoop<T>(o: RetryLoopOptions<T>): Promise<T | undefined> {
  const clock = o.clock ?? realClock;
  const started = clock.now();
  for (let retryCount = 0; !o.stopped(); retryCount++) {
    let delay: number | null;
    try {
      delay = o.policy.nextRetryDelayMs({ retryCount, elapsedMs: clock.now() - started });
    } catch (err) {
      throw new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', `the reconnect policy failed: ${(err as Error)?.message ?? String(err)}`);
    }
    if (delay === null) throw new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'gave up reconnecting');
    if (delay > 0) await clock.sleep(delay);
    if (o.stopped()) return undefined;
    try {
      return await o.attempt();
    } catch (err) {
      const e = typedError(err);
      if (!o.retryable(e, retryCount)) throw e;
    }
  }
  return undefined;
}
