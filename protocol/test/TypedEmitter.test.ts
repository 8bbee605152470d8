import { describe, expect, it, vi } from 'vitest';
import { DefaultReconnectPolicy, TypedEmitter, onceEvent } from '../src/index.js';

describe('TypedEmitter', () => {
  it('safeEmit() isolates a throwing listener and reports it as listenererror', () => {
    const e = new TypedEmitter<{ x: [number]; listenererror: [string, unknown] }>();
    const good = vi.fn();
    const onErr = vi.fn();
    e.on('x', () => {
      throw new Error('boom');
    });
    e.on('x', good);
    e.on('listenererror', onErr);
    expect(() => e.safeEmit('x', 1)).not.toThrow();
    expect(good).toHaveBeenCalledWith(1);
    expect(onErr).toHaveBeenCalledWith('x', expect.any(Error));
  });

  it('once() fires once and off() removes a once listener', () => {
    const e = new TypedEmitter<{ x: [] }>();
    const a = vi.fn();
    const b = vi.fn();
    e.once('x', a);
    e.once('x', b);
    e.off('x', b);
    e.emit('x');
    e.emit('x');
    expect(a).toHaveBeenCalledTimes(1);
    expect(b).not.toHaveBeenCalled();
  });

  it('onceEvent() resolves with the arguments or rejects on timeout', async () => {
    const e = new TypedEmitter<{ x: [number] }>();
    setTimeout(() => e.emit('x', 5), 1);
    await expect(onceEvent(e, 'x')).resolves.toEqual([5]);
    await expect(onceEvent(e, 'x', { timeoutMs: 5 })).rejects.toThrow(/timed out/);
  });
});

describe('DefaultReconnectPolicy', () => {
  it('retries at once first, then backs off with bounded jitter, then gives up', () => {
    const p = new DefaultReconnectPolicy({ baseDelayMs: 100, maxDelayMs: 1000, jitter: 0.5, maxElapsedMs: 10_000, random: () => 1 });
    expect(p.nextRetryDelayMs({ retryCount: 0, elapsedMs: 0 })).toBe(0);
    const delays = [1, 2, 3, 4, 5, 6].map((retryCount) => p.nextRetryDelayMs({ retryCount, elapsedMs: 0 })!);
    expect(delays).toEqual([150, 300, 600, 1000, 1000, 1000]);
    const low = new DefaultReconnectPolicy({ baseDelayMs: 100, jitter: 0.5, random: () => 0 });
    expect(low.nextRetryDelayMs({ retryCount: 1, elapsedMs: 0 })).toBe(50);
    expect(p.nextRetryDelayMs({ retryCount: 2, elapsedMs: 10_000 })).toBeNull();
  });
});
