import { describe, expect, it } from 'vitest';
import { PingLiveness } from '../src/node/PingLiveness.js';

function setup(options: { deadAfterMs: number; suspectAfterMs?: number; roundIntervalMs?: number }) {
  const clock = { t: 1000, now() { return this.t; } };
  return { clock, liveness: new PingLiveness<object>(options, { clock }) };
}

describe('PingLiveness', () => {
  it('a client that answers stays alive however long it lives', () => {
    const { clock, liveness } = setup({ deadAfterMs: 1000, suspectAfterMs: 300 });
    const c = {};
    liveness.heard(c);
    for (let i = 0; i < 20; i++) {
      clock.t += 250;
      expect(liveness.verdict(c).verdict).toBe('alive');
      liveness.heard(c);
    }
  });

  it('silence is reported once after suspectAfterMs, and the client is dead after deadAfterMs', () => {
    const { clock, liveness } = setup({ deadAfterMs: 1000, suspectAfterMs: 300 });
    const c = {};
    liveness.heard(c);
    clock.t += 300;
    expect(liveness.verdict(c)).toEqual({ verdict: 'alive', silentMs: 300 });
    clock.t += 1;
    expect(liveness.verdict(c)).toEqual({ verdict: 'silent', silentMs: 301 });
    clock.t += 200;
    expect(liveness.verdict(c).verdict).toBe('alive');
    clock.t += 500;
    expect(liveness.verdict(c)).toEqual({ verdict: 'dead', silentMs: 1001 });
  });

  it('a pong ends a silence: the next one is reported again', () => {
    const { clock, liveness } = setup({ deadAfterMs: 10_000, suspectAfterMs: 300 });
    const c = {};
    liveness.heard(c);
    clock.t += 400;
    expect(liveness.verdict(c).verdict).toBe('silent');
    liveness.heard(c);
    clock.t += 400;
    expect(liveness.verdict(c).verdict).toBe('silent');
  });

  it('without suspectAfterMs a client is alive until dead', () => {
    const { clock, liveness } = setup({ deadAfterMs: 500 });
    const c = {};
    liveness.heard(c);
    clock.t += 500;
    expect(liveness.verdict(c).verdict).toBe('alive');
    clock.t += 1;
    expect(liveness.verdict(c).verdict).toBe('dead');
  });

  it('after this process stood still (a round far too late), silence counts from when it resumed', () => {
    const { clock, liveness } = setup({ deadAfterMs: 1000, suspectAfterMs: 300, roundIntervalMs: 250 });
    const c = {};
    liveness.heard(c);
    liveness.round();
    clock.t += 250;
    liveness.round();
    expect(liveness.verdict(c).verdict).toBe('alive');
    // Frozen for 10 s: the client's pongs are unread, not missing.
    clock.t += 10_000;
    liveness.round();
    expect(liveness.verdict(c)).toEqual({ verdict: 'alive', silentMs: 0 });
    // A client that really stopped answering is still found out, a deadAfterMs after the resume.
    clock.t += 250;
    liveness.round();
    expect(liveness.verdict(c)).toEqual({ verdict: 'alive', silentMs: 250 });
    for (let i = 0; i < 3; i++) {
      clock.t += 250;
      liveness.round();
    }
    clock.t += 1;
    liveness.round();
    expect(liveness.verdict(c)).toEqual({ verdict: 'dead', silentMs: 1001 });
  });

  it('rounds on time give no allowance', () => {
    const { clock, liveness } = setup({ deadAfterMs: 1000, roundIntervalMs: 250 });
    const c = {};
    liveness.heard(c);
    for (let i = 0; i < 4; i++) {
      clock.t += 260;
      liveness.round();
    }
    expect(liveness.verdict(c)).toEqual({ verdict: 'dead', silentMs: 1040 });
  });
});
