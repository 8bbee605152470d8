import { CascadeError, silentLogger } from '@cascade/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccountService, type AccountServiceOptions } from '../src/accounts/AccountService.js';
import { MemoryAccountStore } from '../src/accounts/MemoryAccountStore.js';
import { Argon2Hasher, type PasswordHasher } from '../src/accounts/PasswordHasher.js';
import { RevocationList } from '../src/auth/RevocationList.js';
import { TokenService } from '../src/auth/TokenService.js';
import { MemoryLedgerStore } from '../src/credits/MemoryLedgerStore.js';

const SECRET = 'unit-test-secret-0123456789';
const OPTIONS: AccountServiceOptions = {
  sessionTtlSec: 3600,
  signInPerMinute: 5,
  signUpPerHour: 3,
  signUpPerMinuteTotal: 4,
  relayTokenTtlSec: 86_400,
  broadcastTokenTtlSec: 3600,
  signupGrantMicro: 2_000_000,
};
/** Not a hash: unit tests need not spend argon2's time (Argon2Hasher has its own test). */
const plainHasher: PasswordHasher = { hash: async (p) => `plain:${p}`, verify: async (h, p) => h === `plain:${p}` };
const PASSWORD = 'correct horse battery';

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CascadeError);
    return (err as CascadeError).code;
  }
  return undefined;
}

describe('AccountService', () => {
  let now: number;
  let store: MemoryAccountStore;
  let ledger: MemoryLedgerStore;
  let revocations: RevocationList;
  let tokens: TokenService;
  const make = (secret = SECRET, options: Partial<AccountServiceOptions> = {}) =>
    new AccountService({ ...OPTIONS, ...options }, { store, ledger, tokens, revocations, hasher: plainHasher, secret, logger: silentLogger, clock: { now: () => now } });

  beforeEach(async () => {
    now = 1_700_000_000_000;
    store = new MemoryAccountStore();
    ledger = new MemoryLedgerStore();
    revocations = new RevocationList(store, { logger: silentLogger });
    await revocations.start();
    tokens = new TokenService(SECRET, { revocations });
  });
  afterEach(() => revocations.close());

  it('signUp() creates the account with its ledger entry and grant, and its cookie signs it in', async () => {
    const accounts = make();
    const s = await accounts.signUp('Alice', PASSWORD, '10.0.0.1');
    expect(s.account).toMatchObject({ name: 'Alice', key: 'alice', passwordHash: `plain:${PASSWORD}`, createdAt: now });
    expect(s.maxAgeSec).toBe(3600);
    expect(await accounts.authenticate(s.cookie)).toEqual(s.account);
    expect(await ledger.get(s.account.id)).toMatchObject({ granted: 2_000_000, earned: 0, spent: 0 });
  });

  it('signUp() refuses bad names, short passwords and taken names (case folded) with their codes', async () => {
    const accounts = make();
    for (const name of ['ab', 'has space', '-dash', 'x'.repeat(33), 'dev-alice', 'Origin', 42]) {
      expect(await codeOf(accounts.signUp(name, PASSWORD, '10.0.0.1')), String(name)).toBe('CASCADE_ERR_ACCOUNT_INVALID_NAME');
    }
    expect(await codeOf(accounts.signUp('alice', 'short', '10.0.0.2'))).toBe('CASCADE_ERR_ACCOUNT_WEAK_PASSWORD');
    expect(await codeOf(accounts.signUp('alice', 'x'.repeat(257), '10.0.0.2'))).toBe('CASCADE_ERR_ACCOUNT_WEAK_PASSWORD');
    await accounts.signUp('alice', PASSWORD, '10.0.0.3');
    expect(await codeOf(accounts.signUp('ALICE', PASSWORD, '10.0.0.4'))).toBe('CASCADE_ERR_ACCOUNT_NAME_TAKEN');
  });

  it('signIn() takes the right password under any case of the name, and refuses a wrong one or an unknown name alike', async () => {
    const accounts = make();
    const { account } = await accounts.signUp('Alice', PASSWORD, '10.0.0.1');
    const s = await accounts.signIn('ALICE', PASSWORD, '10.0.0.2');
    expect(await accounts.authenticate(s.cookie)).toEqual(account);
    expect(await codeOf(accounts.signIn('alice', 'wrong password!', '10.0.0.3'))).toBe('CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS');
    expect(await codeOf(accounts.signIn('nobody', PASSWORD, '10.0.0.4'))).toBe('CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS');
    expect(await codeOf(accounts.signIn({ name: 1 }, PASSWORD, '10.0.0.4'))).toBe('CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS');
  });

  it('signIn() is rate-limited per address and per name, the right password included; the next minute it works again', async () => {
    const accounts = make();
    await accounts.signUp('alice', PASSWORD, '10.0.0.1');
    for (let i = 0; i < 5; i++) await codeOf(accounts.signIn('alice', 'guess number ' + i, '10.0.0.9'));
    expect(await codeOf(accounts.signIn('alice', PASSWORD, '10.0.0.9'))).toBe('CASCADE_ERR_ACCOUNT_RATE_LIMITED');
    // Guessing from many addresses meets the per-name limit.
    expect(await codeOf(accounts.signIn('alice', PASSWORD, '10.0.0.10'))).toBe('CASCADE_ERR_ACCOUNT_RATE_LIMITED');
    // Others are not disturbed.
    await accounts.signUp('bob', PASSWORD, '10.0.0.11');
    expect((await accounts.signIn('bob', PASSWORD, '10.0.0.11')).account.name).toBe('bob');
    now += 60_000;
    expect((await accounts.signIn('alice', PASSWORD, '10.0.0.9')).account.name).toBe('alice');
  });

  it('signUp() is rate-limited per address per hour and on the whole deployment per minute', async () => {
    const accounts = make();
    for (let i = 0; i < 3; i++) await accounts.signUp(`user${i}`, PASSWORD, '10.0.0.1');
    expect(await codeOf(accounts.signUp('user3', PASSWORD, '10.0.0.1'))).toBe('CASCADE_ERR_ACCOUNT_RATE_LIMITED');
    await accounts.signUp('user4', PASSWORD, '10.0.0.2');
    // 4 created (and 1 refused attempt counted) this minute: a flood from fresh addresses is refused too.
    expect(await codeOf(accounts.signUp('user5', PASSWORD, '10.0.0.3'))).toBe('CASCADE_ERR_ACCOUNT_RATE_LIMITED');
    expect(await store.countAccounts()).toBe(4);
  });

  it('authenticate() refuses a missing, forged, foreign, ended or expired session with its code', async () => {
    const accounts = make();
    const { cookie } = await accounts.signUp('alice', PASSWORD, '10.0.0.1');
    expect(await codeOf(accounts.authenticate(undefined))).toBe('CASCADE_ERR_ACCOUNT_SIGNED_OUT');
    expect(await codeOf(accounts.authenticate('garbage'))).toBe('CASCADE_ERR_ACCOUNT_SESSION_INVALID');
    expect(await codeOf(accounts.authenticate(cookie.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))))).toBe('CASCADE_ERR_ACCOUNT_SESSION_INVALID');
    // Another deployment (another secret), even one sharing the store, does not take this cookie.
    expect(await codeOf(make('another-deployment-secret-0123').authenticate(cookie))).toBe('CASCADE_ERR_ACCOUNT_SESSION_INVALID');
    now += 3600_000;
    expect(await codeOf(accounts.authenticate(cookie))).toBe('CASCADE_ERR_ACCOUNT_SESSION_INVALID');
    const again = await accounts.signIn('alice', PASSWORD, '10.0.0.1');
    await accounts.signOut(again.cookie);
    expect(await codeOf(accounts.authenticate(again.cookie))).toBe('CASCADE_ERR_ACCOUNT_SESSION_INVALID');
  });

  it('issueToken() gives a volunteer relay token under the account name, listed, and revocable by its owner only', async () => {
    const accounts = make();
    const alice = (await accounts.signUp('Alice', PASSWORD, '10.0.0.1')).account;
    const bob = (await accounts.signUp('bob', PASSWORD, '10.0.0.2')).account;
    const t = await accounts.issueToken(alice, 'relay');
    expect(tokens.verify(t.token, 'relay')).toMatchObject({ sub: 'Alice', volunteer: true, acct: alice.id, jti: t.id });
    // Tokens are checked against real time, not the service's clock: a day from now, to the second.
    expect(t.expiresAt).toBeGreaterThan(Date.now() + 86_400_000 - 60_000);
    expect(t.expiresAt).toBeLessThanOrEqual(Date.now() + 86_400_000);
    const b = await accounts.issueToken(alice, 'broadcast');
    expect(tokens.verify(b.token, 'broadcast')).toMatchObject({ sub: 'Alice', acct: alice.id });
    expect((await accounts.listTokens(alice)).map((x) => [x.id, x.kind, x.revoked])).toEqual([
      [b.id, 'broadcast', false],
      [t.id, 'relay', false],
    ]);
    expect(await codeOf(accounts.revokeToken(bob, t.id))).toBe('CASCADE_ERR_AUTH_FORBIDDEN');
    await accounts.revokeToken(alice, t.id);
    expect(() => tokens.verify(t.token, 'relay')).toThrow(expect.objectContaining({ code: 'CASCADE_ERR_AUTH_REVOKED_TOKEN' }));
    expect((await accounts.listTokens(alice)).find((x) => x.id === t.id)?.revoked).toBe(true);
    expect((await accounts.accountForOwner('ALICE'))?.id).toBe(alice.id);
  });
});

describe('Argon2Hasher', () => {
  it('hashes with argon2id and verifies only the right password', async () => {
    const h = new Argon2Hasher(1);
    const hash = await h.hash(PASSWORD);
    expect(hash).toMatch(/^\$argon2id\$/);
    expect(await h.verify(hash, PASSWORD)).toBe(true);
    expect(await h.verify(hash, 'wrong')).toBe(false);
    expect(await h.verify('not a hash', PASSWORD)).toBe(false);
  });

  it('refuses with CASCADE_ERR_ACCOUNT_BUSY beyond its concurrency and 8 × as many waiting', async () => {
    const h = new Argon2Hasher(1);
    const results = await Promise.allSettled(Array.from({ length: 11 }, () => h.hash(PASSWORD)));
    const busy = results.filter((r) => r.status === 'rejected');
    expect(busy).toHaveLength(2);
    expect((busy[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'CASCADE_ERR_ACCOUNT_BUSY' });
    // The slots are free again.
    expect(await h.hash(PASSWORD)).toMatch(/^\$argon2id\$/);
  });
});
