import jwt from 'jsonwebtoken';
import { CascadeError, silentLogger, type ErrorCode } from '@cascade/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryAccountStore } from '../src/accounts/MemoryAccountStore.js';
import { RelayTokens } from '../src/auth/RelayTokens.js';
import { RevocationList } from '../src/auth/RevocationList.js';
import { TokenService } from '../src/auth/TokenService.js';

const SECRET = 'unit-test-secret-0123456789';

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CascadeError);
    return (err as CascadeError).code;
  }
  return undefined;
}

describe('TokenService', () => {
  const tokens = new TokenService(SECRET);

  it('mint() gives every token an id, an expiry, its kind as audience and the issuer', () => {
    const t = tokens.mint({ scope: ['relay'], sub: 'alice', volunteer: true }, 600);
    const claims = jwt.decode(t.token) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: 'alice', jti: t.id, aud: 'cascade:relay', iss: 'cascade', volunteer: true });
    expect(t.expiresAt).toBe((claims.exp as number) * 1000);
    expect(tokens.verify(t.token, 'relay')).toMatchObject({ sub: 'alice', jti: t.id });
    expect(tokens.mint({ scope: ['relay'], sub: 'alice' }, 600).id).not.toBe(t.id);
  });

  it('a token of one kind is refused as another (CASCADE_ERR_AUTH_FORBIDDEN): each kind has its own key and audience', () => {
    const broadcast = tokens.issue({ scope: ['broadcast'], sub: 'alice' }, 600);
    expect(codeOf(() => tokens.verify(broadcast, 'relay'))).toBe('CASCADE_ERR_AUTH_FORBIDDEN');
    expect(codeOf(() => tokens.verify(broadcast, 'operator'))).toBe('CASCADE_ERR_AUTH_FORBIDDEN');
    // Re-signed by hand with the relay audience but the broadcast key: a forgery, not a wrong scope.
    const relabelled = jwt.sign({ ...(jwt.decode(broadcast) as object), aud: 'cascade:relay' }, 'x'.repeat(32));
    expect(codeOf(() => tokens.verify(relabelled, 'relay'))).toBe('CASCADE_ERR_AUTH_INVALID_TOKEN');
    expect(() => tokens.mint({ scope: ['broadcast', 'relay'], sub: 'a' }, 60)).toThrow(TypeError);
  });

  it('refuses tokens signed with the raw secret, another secret, another issuer, or without an id', () => {
    const raw = jwt.sign({ scope: ['relay'], sub: 'a', jti: 'x' }, SECRET, { algorithm: 'HS256', audience: 'cascade:relay', issuer: 'cascade' });
    expect(codeOf(() => tokens.verify(raw, 'relay'))).toBe('CASCADE_ERR_AUTH_INVALID_TOKEN');
    const other = new TokenService('another-secret-0123456789').issue({ scope: ['relay'], sub: 'a' }, 60);
    expect(codeOf(() => tokens.verify(other, 'relay'))).toBe('CASCADE_ERR_AUTH_INVALID_TOKEN');
    const otherIssuer = new TokenService(SECRET, { issuer: 'staging' }).issue({ scope: ['relay'], sub: 'a' }, 60);
    expect(codeOf(() => tokens.verify(otherIssuer, 'relay'))).toBe('CASCADE_ERR_AUTH_INVALID_TOKEN');
    expect(codeOf(() => tokens.verify(undefined, 'relay'))).toBe('CASCADE_ERR_AUTH_MISSING_TOKEN');
    expect(codeOf(() => tokens.verify(tokens.issue({ scope: ['relay'], sub: 'a' }, -10), 'relay'))).toBe('CASCADE_ERR_AUTH_EXPIRED_TOKEN');
  });

  it('refuses a revoked id at once, and renew() keeps the id so revoking ends every renewal', () => {
    const revoked = new Set<string>();
    const t = new TokenService(SECRET, { revocations: { has: (id) => revoked.has(id) } });
    const first = t.mint({ scope: ['relay'], sub: 'alice', volunteer: true, acct: 'a_1' }, 60);
    const claims = t.verify(first.token, 'relay');
    const renewed = t.renew(claims, 3600);
    expect(renewed.id).toBe(first.id);
    expect(renewed.expiresAt).toBeGreaterThan(first.expiresAt);
    expect(t.verify(renewed.token, 'relay')).toMatchObject({ sub: 'alice', volunteer: true, acct: 'a_1', jti: first.id });
    revoked.add(first.id);
    expect(codeOf(() => t.verify(first.token, 'relay'))).toBe('CASCADE_ERR_AUTH_REVOKED_TOKEN');
    expect(codeOf(() => t.verify(renewed.token, 'relay'))).toBe('CASCADE_ERR_AUTH_REVOKED_TOKEN');
    expect(codeOf(() => t.renew(claims, 3600))).toBe('CASCADE_ERR_AUTH_REVOKED_TOKEN');
  });
});

describe('RevocationList', () => {
  const lists: RevocationList[] = [];
  afterEach(() => {
    for (const l of lists.splice(0)) l.close();
  });

  it('loads what the store holds, hears revocations made through another list once, and close() is idempotent', async () => {
    const store = new MemoryAccountStore();
    await store.revokeToken('old', 1);
    const a = new RevocationList(store, { logger: silentLogger });
    const b = new RevocationList(store, { logger: silentLogger });
    lists.push(a, b);
    await Promise.all([a.start(), b.start()]);
    expect(a.has('old')).toBe(true);
    const heard = vi.fn();
    b.on('revoked', heard);
    expect(await a.revoke('t1')).toBe(true);
    expect(await a.revoke('t1')).toBe(false);
    expect(b.has('t1')).toBe(true);
    await b.sync();
    expect(heard).toHaveBeenCalledTimes(1);
    expect(heard).toHaveBeenCalledWith('t1');
    a.close();
    a.close();
  });

  it('a revocation whose notification was lost is picked up by the periodic reload', async () => {
    vi.useFakeTimers();
    try {
      const store = new MemoryAccountStore();
      // A store whose notifications never arrive (a pub/sub connection that was down).
      const deaf = { revokeToken: store.revokeToken.bind(store), revokedTokens: store.revokedTokens.bind(store), onRevocation: () => () => {} };
      const list = new RevocationList(deaf, { logger: silentLogger }, { resyncMs: 1000 });
      lists.push(list);
      await list.start();
      await store.revokeToken('lost', 1);
      expect(list.has('lost')).toBe(false);
      await vi.advanceTimersByTimeAsync(1000);
      expect(list.has('lost')).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('RelayTokens', () => {
  it('drains each relay on a revoked token, then closes it with CASCADE_ERR_AUTH_REVOKED_TOKEN; untracked relays are left alone', async () => {
    vi.useFakeTimers();
    try {
      const store = new MemoryAccountStore();
      const revocations = new RevocationList(store, { logger: silentLogger });
      await revocations.start();
      const tokens = new TokenService(SECRET, { revocations });
      const relayTokens = new RelayTokens({ ttlSec: 3600, drainGraceMs: 2000 }, { tokens, revocations, logger: silentLogger });
      const claims = tokens.verify(tokens.issue({ scope: ['relay'], sub: 'alice', volunteer: true }, 60), 'relay');
      const other = tokens.verify(tokens.issue({ scope: ['relay'], sub: 'bob', volunteer: true }, 60), 'relay');
      const relay = (nodeId: string) => ({ nodeId, drain: vi.fn(async () => {}), close: vi.fn() });
      const [r1, r2, r3, r4] = [relay('alice-1'), relay('alice-2'), relay('bob-1'), relay('alice-3')];
      relayTokens.track(claims, r1);
      relayTokens.track(claims, r2);
      relayTokens.track(other, r3);
      const untrack = relayTokens.track(claims, r4);
      untrack();
      expect(relayTokens.renew(claims).id).toBe(claims.jti);

      await revocations.revoke(claims.jti);
      await vi.advanceTimersByTimeAsync(0);
      expect(r1.drain).toHaveBeenCalledTimes(1);
      expect(r2.drain).toHaveBeenCalledTimes(1);
      expect(r1.close).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(2000);
      expect(r1.close).toHaveBeenCalledTimes(1);
      expect((r1.close.mock.calls[0]![0] as CascadeError).code).toBe('CASCADE_ERR_AUTH_REVOKED_TOKEN');
      expect(r2.close).toHaveBeenCalledTimes(1);
      expect(r3.drain).not.toHaveBeenCalled();
      expect(r4.drain).not.toHaveBeenCalled();
      expect(codeOf(() => relayTokens.renew(claims))).toBe('CASCADE_ERR_AUTH_REVOKED_TOKEN');
      relayTokens.close();
      relayTokens.close();
      revocations.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
