import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CascadeError } from '../src/errors.js';
import { TokenRenewal, tokenExpiry } from '../src/TokenRenewal.js';

/** An unsigned JWT-shaped token expiring at `expMs` (the renewal only reads exp). */
const token = (expMs: number, n = 0) => `h.${Buffer.from(JSON.stringify({ exp: Math.floor(expMs / 1000), n })).toString('base64url')}.s`;

describe('TokenRenewal', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_700_000_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it('tokenExpiry() reads exp (ms), and undefined for anything else', () => {
    expect(tokenExpiry(token(1_700_000_600_000))).toBe(1_700_000_600_000);
    expect(tokenExpiry('garbage')).toBeUndefined();
    expect(tokenExpiry('a.%%%.b')).toBeUndefined();
  });

  it('renews when a third of the lifetime is left, then again for each new token', async () => {
    const now = Date.now();
    let n = 0;
    const renew = vi.fn(async () => {
      const expiresAt = Date.now() + 3_000_000;
      return { token: token(expiresAt, ++n), expiresAt };
    });
    const r = new TokenRenewal(renew);
    const renewed = vi.fn();
    r.on('renewed', renewed);
    r.start(token(now + 3_000_000));
    await vi.advanceTimersByTimeAsync(1_999_000);
    expect(renew).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1000);
    expect(renew).toHaveBeenCalledTimes(1);
    expect(r.token).toBe(token(now + 5_000_000, 1));
    await vi.advanceTimersByTimeAsync(2_000_000);
    expect(renew).toHaveBeenCalledTimes(2);
    expect(renewed).toHaveBeenCalledTimes(2);
    r.stop();
  });

  it('a token valid for a year is not renewed at once (longer than a timer can wait), but near its end', async () => {
    const year = 365 * 24 * 3600 * 1000;
    const renew = vi.fn(async () => ({ token: token(Date.now() + year), expiresAt: Date.now() + year }));
    const r = new TokenRenewal(renew);
    r.start(token(Date.now() + year));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(renew).not.toHaveBeenCalled();
    // Renewal at two thirds of the lifetime: after several timer-sized steps.
    await vi.advanceTimersByTimeAsync((2 * year) / 3 - 120_000);
    expect(renew).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(renew).toHaveBeenCalledTimes(1);
    r.stop();
  });

  it('retries a failed renewal before expiry, and stops for good on a revoked token', async () => {
    const now = Date.now();
    const renew = vi.fn<() => Promise<{ token: string; expiresAt: number }>>()
      .mockRejectedValueOnce(new CascadeError('CASCADE_ERR_CONTROLLER_UNAVAILABLE'))
      .mockRejectedValueOnce(new CascadeError('CASCADE_ERR_AUTH_REVOKED_TOKEN'));
    const r = new TokenRenewal(renew, { retryMs: 10_000 });
    const revoked = vi.fn();
    const retrying = vi.fn();
    r.on('revoked', revoked).on('retrying', retrying);
    r.start(token(now + 300_000));
    await vi.advanceTimersByTimeAsync(200_000);
    expect(retrying).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(revoked).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1_000_000);
    expect(renew).toHaveBeenCalledTimes(2);
  });

  it('stop() cancels a renewal in flight: its answer is dropped', async () => {
    let resolve!: (v: { token: string; expiresAt: number }) => void;
    const r = new TokenRenewal(() => new Promise((res) => (resolve = res)));
    const first = token(Date.now() + 30_000);
    r.start(first);
    await vi.advanceTimersByTimeAsync(20_000);
    r.stop();
    resolve({ token: token(Date.now() + 60_000, 9), expiresAt: Date.now() + 60_000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(r.token).toBe(first);
  });
});
