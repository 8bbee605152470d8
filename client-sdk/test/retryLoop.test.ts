import { describe, expect, it } from 'vitest';
import { CascadeError, DefaultReconnectPolicy, type ReconnectPolicy } from '@cascade/protocol';
import { retryLoop } from '../src/retryLoop.js';

/** Time that moves only when the loop sleeps: every delay the policy asked for is recorded. */
function fakeClock() {
  let t = 0;
  const slept: number[] = [];
  return { slept, now: () => t, sleep: async (ms: number) => void (slept.push(ms), (t += ms)) };
}

const failing = (codes: string[]) => {
  let i = 0;
  return async () => {
    const code = codes[i++];
    if (code) throw new CascadeError(code as never, 'attempt failed');
    return `connected after ${i} attempts`;
  };
};

describe('retryLoop (the reconnect loop Watch and Broadcast share)', () => {
  it('retries through retryable errors with the policy’s delays and returns the first success', async () => {
    const clock = fakeClock();
    const policy = new DefaultReconnectPolicy({ random: () => 0.5 });
    const r = await retryLoop({ policy, clock, stopped: () => false, attempt: failing(['CASCADE_ERR_CLIENT_TIMEOUT', 'CASCADE_ERR_NODE_GONE']), retryable: () => true });
    expect(r).toBe('connected after 3 attempts');
    // First retry immediate (failover stays fast), then backoff.
    expect(clock.slept).toEqual([100, 200]);
  });

  it('gives up when the policy says null, with CASCADE_ERR_CLIENT_CONNECTION', async () => {
    const clock = fakeClock();
    const policy = new DefaultReconnectPolicy({ maxElapsedMs: 1000, maxDelayMs: 400, jitter: 0 });
    const attempts = { n: 0 };
    const p = retryLoop({ policy, clock, stopped: () => false, attempt: async () => { attempts.n++; throw new CascadeError('CASCADE_ERR_CLIENT_TIMEOUT', 'no'); }, retryable: () => true });
    await expect(p).rejects.toMatchObject({ code: 'CASCADE_ERR_CLIENT_CONNECTION', message: expect.stringContaining('gave up reconnecting') });
    expect(clock.now()).toBeGreaterThanOrEqual(1000);
    expect(attempts.n).toBe(clock.slept.length + 1);
  });

  it('an error not worth retrying ends the episode with that error, typed', async () => {
    const seen: string[] = [];
    const p = retryLoop({
      policy: new DefaultReconnectPolicy(),
      clock: fakeClock(),
      stopped: () => false,
      attempt: failing(['CASCADE_ERR_CLIENT_TIMEOUT', 'CASCADE_ERR_AUTH_INVALID_TOKEN']),
      retryable: (e) => (seen.push(e.code), e.code.startsWith('CASCADE_ERR_CLIENT_')),
    });
    await expect(p).rejects.toMatchObject({ code: 'CASCADE_ERR_AUTH_INVALID_TOKEN', name: 'AuthError' });
    expect(seen).toEqual(['CASCADE_ERR_CLIENT_TIMEOUT', 'CASCADE_ERR_AUTH_INVALID_TOKEN']);
  });

  it('a policy that throws ends the episode as CASCADE_ERR_CLIENT_CONNECTION instead of escaping', async () => {
    const policy: ReconnectPolicy = {
      nextRetryDelayMs: ({ retryCount }) => {
        if (retryCount > 0) throw new TypeError('app bug');
        return 0;
      },
    };
    const p = retryLoop({ policy, clock: fakeClock(), stopped: () => false, attempt: failing(['CASCADE_ERR_CLIENT_TIMEOUT']), retryable: () => true });
    await expect(p).rejects.toMatchObject({ code: 'CASCADE_ERR_CLIENT_CONNECTION', message: expect.stringContaining('app bug') });
  });

  it('stopping during a delay ends quietly, without another attempt', async () => {
    let stopped = false;
    let attempts = 0;
    const clock = fakeClock();
    const sleep = clock.sleep;
    clock.sleep = async (ms) => {
      await sleep(ms);
      stopped = true;
    };
    const r = await retryLoop({
      policy: new DefaultReconnectPolicy({ initialDelayMs: 50 }),
      clock,
      stopped: () => stopped,
      attempt: async () => ++attempts,
      retryable: () => true,
    });
    expect(r).toBeUndefined();
    expect(attempts).toBe(0);
  });
});
