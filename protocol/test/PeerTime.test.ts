import { Type } from '@sinclair/typebox';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualChannel, Peer } from '../src/index.js';

const defs = { 'echo.say': { params: Type.Object({ text: Type.String() }), result: Type.Object({ text: Type.String() }) } };

/** One Peer on a channel that records what it sends, with its clock in the test's hands. */
function lone(options: { rateLimitPerSec?: number; rateBurst?: number; requestTimeoutMs?: number } = {}) {
  const clock = { t: 0, now() { return this.t; } };
  const sent: string[] = [];
  let closed: [number, string] | undefined;
  const channel = new ManualChannel((d) => sent.push(d), (code, reason) => (closed = [code, reason]));
  const peer = new Peer({ channel, inbound: defs, outbound: defs, notifications: {}, clock, ...options });
  return { peer, clock, sent, closed: () => closed };
}

const request = (id: number) => JSON.stringify({ v: 1, id, type: 'echo.say', data: { text: 'x' } });

describe('Peer on fake time', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('the rate limit allows its burst, then refills at its rate with the clock', async () => {
    const { peer, clock, closed } = lone({ rateLimitPerSec: 5, rateBurst: 3 });
    peer.handle('echo.say', ({ text }) => ({ text }));
    for (let i = 1; i <= 3; i++) peer.receive(request(i));
    // 200 ms at 5/s earn one message, no more.
    clock.t += 200;
    peer.receive(request(4));
    expect(closed()).toBeUndefined();
    peer.receive(request(5));
    expect(closed()?.[0]).toBe(4429);
  });

  it('a request times out after requestTimeoutMs, not before', async () => {
    const { peer } = lone({ requestTimeoutMs: 1000 });
    const answer = peer.request('echo.say', { text: 'a' });
    const settled = vi.fn();
    answer.then(settled, settled);
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await expect(answer).rejects.toMatchObject({ code: 'CASCADE_ERR_CLIENT_TIMEOUT' });
  });

  it('a handled request reports its duration on the injected clock', async () => {
    const { peer, clock } = lone();
    const handled = vi.fn();
    peer.on('handled', handled);
    peer.handle('echo.say', async ({ text }) => {
      clock.t += 42;
      return { text };
    });
    peer.receive(request(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(handled).toHaveBeenCalledWith('echo.say', 42, undefined);
  });
});
