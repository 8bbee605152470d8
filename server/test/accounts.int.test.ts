import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Redis } from 'ioredis';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  metric,
  openRawRelay,
  REPO_ROOT,
  startRelay,
  startServer,
  TEST_SECRET,
  waitFor,
  type NodeProcess,
} from '@cascade/testing';

/**
 * Accounts over HTTP against real processes sharing one Redis: instance A (origin + controller)
 * and B (controller only), as a deployment with two controller instances runs; C is another
 * deployment (its own secret, in-process stores). Sign-up and sign-in, the session cookie,
 * rate limits, revocation of a running relay's token, the operator's listing and the CLI.
 */
let a: NodeProcess;
let b: NodeProcess;
let c: NodeProcess;
const PASSWORD = 'correct horse battery';

let nextAddress = 1;
/**
 * A browser-like client: keeps the session cookie, sends JSON. Each one comes from an address
 * of its own, as the servers' proxy (a trusted loopback proxy, http.trustProxy) forwards it, so that per-address limits
 * count what one client does.
 */
class Client {
  cookie: string | undefined;
  setCookie: string | undefined;
  constructor(
    readonly base: string,
    readonly address = `10.1.0.${nextAddress++}`,
  ) {}
  at(base: string): Client {
    const other = new Client(base, this.address);
    other.cookie = this.cookie;
    return other;
  }
  async call<T = Record<string, unknown>>(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
    const res = await fetch(this.base + p, {
      method,
      headers: {
        'x-forwarded-for': this.address,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const set = res.headers.get('set-cookie');
    if (set) {
      this.setCookie = set;
      this.cookie = set.split(';')[0];
    }
    return { status: res.status, body: (res.status === 204 ? {} : await res.json()) as T };
  }
}

const signUp = async (base: string, name: string) => {
  const client = new Client(base);
  const r = await client.call('POST', '/api/account/signup', { name, password: PASSWORD });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return client;
};

beforeAll(async () => {
  const admin = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
  await admin.flushdb();
  admin.disconnect();
  const env = {
    CASCADE_REDIS_URL: inject('redisUrl'),
    CASCADE_ACCOUNTS_SIGN_IN_PER_MINUTE: '5',
    CASCADE_ACCOUNTS_SIGN_UP_PER_HOUR: '4',
    CASCADE_CREDITS_SIGNUP_GRANT: '3',
  };
  [a, b, c] = await Promise.all([
    startServer({ env }),
    startServer({ env: { ...env, CASCADE_ROLES: '["controller"]' } }),
    startServer({ env: { CASCADE_ROLES: '["controller"]', CASCADE_AUTH_SECRET: 'another-deployment-secret-0123456789' } }),
  ]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
});

describe('sign-up and sign-in', () => {
  it('sign-up sets an httpOnly SameSite=Strict session cookie that signs the user in on every instance', async () => {
    const alice = await signUp(a.url, 'Alice');
    expect(alice.setCookie).toMatch(/^cascade_session=[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=604800$/);
    const me = await alice.call('GET', '/api/me');
    expect(me).toMatchObject({ status: 200, body: { name: 'Alice', balance: 3, granted: 3, earned: 0 } });
    expect(await alice.at(b.url).call('GET', '/api/me')).toMatchObject({ status: 200, body: { id: me.body.id } });
    const credits = await alice.call<{ daily: unknown[]; history: { kind: string; points: number }[] }>('GET', '/api/me/credits?days=7');
    expect(credits.body.daily).toHaveLength(7);
    expect(credits.body.history).toEqual([expect.objectContaining({ kind: 'grant', points: 3 })]);
  });

  it('sign-in works under any case of the name; sign-out ends the session', async () => {
    const client = new Client(b.url);
    expect((await client.call('POST', '/api/account/signin', { name: 'ALICE', password: PASSWORD })).status).toBe(200);
    expect((await client.call('GET', '/api/me')).body).toMatchObject({ name: 'Alice' });
    const cookie = client.cookie;
    expect((await client.call('POST', '/api/account/signout')).status).toBe(204);
    client.cookie = cookie;
    expect(await client.call('GET', '/api/me')).toMatchObject({ status: 401, body: { code: 'CASCADE_ERR_ACCOUNT_SESSION_INVALID' } });
    expect(await new Client(a.url).call('GET', '/api/me')).toMatchObject({ status: 401, body: { code: 'CASCADE_ERR_ACCOUNT_SIGNED_OUT' } });
  });

  it('password guessing: wrong passwords get BAD_CREDENTIALS, then RATE_LIMITED on every instance (the right password too); others still sign in', async () => {
    await signUp(a.url, 'victim');
    const guesser = new Client(a.url);
    const codes: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await guesser.at(i % 2 ? b.url : a.url).call<{ code: string }>('POST', '/api/account/signin', { name: 'victim', password: `guess-number-${i}` });
      codes.push(r.body.code);
    }
    expect(codes.slice(0, 5)).toEqual(Array(5).fill('CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS'));
    expect(codes.slice(5)).toEqual(['CASCADE_ERR_ACCOUNT_RATE_LIMITED', 'CASCADE_ERR_ACCOUNT_RATE_LIMITED']);
    expect((await guesser.call<{ code: string }>('POST', '/api/account/signin', { name: 'victim', password: PASSWORD })).status).toBe(429);
    expect((await new Client(b.url).call('POST', '/api/account/signin', { name: 'alice', password: PASSWORD })).status).toBe(200);
    expect(a.logs.some((l) => l.includes('account attempt rate-limited')) || b.logs.some((l) => l.includes('account attempt rate-limited'))).toBe(true);
  });

  it('a sign-up flood from one address is refused with RATE_LIMITED (4 an hour) and creates nothing more', async () => {
    const flooder = new Client(b.url);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await flooder.at(i % 2 ? a.url : b.url).call('POST', '/api/account/signup', { name: `flood${i}`, password: PASSWORD })).status);
    expect(statuses).toEqual([201, 201, 201, 201, 429, 429]);
    expect((await new Client(a.url).call('POST', '/api/account/signin', { name: 'flood4', password: PASSWORD })).body).toMatchObject({ code: 'CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS' });
    // Someone else signs up meanwhile.
    await signUp(a.url, 'latecomer');
  });

  it('bad input gets its code: bad names, short passwords, taken names, non-JSON bodies, another site', async () => {
    const client = new Client(c.url);
    expect((await client.call('POST', '/api/account/signup', { name: 'x', password: PASSWORD })).body).toMatchObject({ code: 'CASCADE_ERR_ACCOUNT_INVALID_NAME' });
    expect((await client.call('POST', '/api/account/signup', { name: 'carol', password: 'short' })).body).toMatchObject({ code: 'CASCADE_ERR_ACCOUNT_WEAK_PASSWORD' });
    await signUp(c.url, 'carol');
    expect((await client.call('POST', '/api/account/signup', { name: 'Carol', password: PASSWORD })).body).toMatchObject({ code: 'CASCADE_ERR_ACCOUNT_NAME_TAKEN' });
    const form = await fetch(`${c.url}/api/account/signin`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=carol&password=x' });
    expect(form.status).toBe(400);
    expect((await client.call('POST', '/api/account/signin', { name: 'carol', password: 'x'.repeat(5000) })).body).toMatchObject({ code: 'CASCADE_ERR_PROTOCOL_TOO_LARGE' });
    const broken = await fetch(`${c.url}/api/account/signin`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' });
    expect(await broken.json()).toMatchObject({ code: 'CASCADE_ERR_PROTOCOL_MALFORMED' });
    const cross = await client.call('POST', '/api/account/signin', { name: 'carol', password: PASSWORD }, { origin: 'https://evil.example' });
    expect(cross).toMatchObject({ status: 403, body: { code: 'CASCADE_ERR_ACCOUNT_CROSS_SITE' } });
  });

  it("a session cookie from another deployment is refused (SESSION_INVALID, a log line), and that deployment's accounts are its own", async () => {
    const carol = new Client(c.url);
    expect((await carol.call('POST', '/api/account/signin', { name: 'carol', password: PASSWORD })).status).toBe(200);
    expect(await carol.at(a.url).call('GET', '/api/me')).toMatchObject({ status: 401, body: { code: 'CASCADE_ERR_ACCOUNT_SESSION_INVALID' } });
    await waitFor(() => a.logs.some((l) => l.includes('session cookie refused')), { what: 'the refusal logged on A' });
    expect((await new Client(a.url).call('POST', '/api/account/signin', { name: 'carol', password: PASSWORD })).status).toBe(401);
  });
});

describe('tokens and revocation', () => {
  it('a relay running on a Volunteer-page token is drained and cut off when the token is revoked through the other instance, and refused when it comes back', async () => {
    const alice = new Client(a.url);
    await alice.call('POST', '/api/account/signin', { name: 'alice', password: PASSWORD });
    const t = await alice.call<{ id: string; token: string; command: string }>('POST', '/api/me/tokens', { kind: 'relay' });
    expect(t.status).toBe(201);
    expect(t.body.command).toMatch(new RegExp(`^npm run relay -- --controller http://[\\w.:\\[\\]-]+:${a.port} --token ${t.body.token}$`));
    expect(jwt.decode(t.body.token)).toMatchObject({ sub: 'Alice', volunteer: true, jti: t.body.id, aud: 'cascade:relay' });
    const relay = await startRelay({ controllerUrl: a.url, token: t.body.token });
    try {
      const node = async () => ((await (await fetch(`${a.url}/api/nodes`)).json()) as { nodes: { id: string; status: string; alive: boolean }[] }).nodes.find((n) => n.id === relay.nodeId);
      expect((await node())?.status).toBe('ready');
      expect(relay.nodeId).toMatch(/^Alice-/);

      expect((await alice.at(b.url).call('DELETE', `/api/me/tokens/${t.body.id}`)).status).toBe(204);
      // Drained first (no new traffic, children moved), then cut off and forgotten.
      await waitFor(async () => (await node())?.status === 'draining' || (await node()) === undefined, { what: 'the relay drained', timeoutMs: 10_000 });
      await waitFor(async () => (await node()) === undefined, { what: 'the relay gone', timeoutMs: 20_000 });
      // It comes back with the same token: refused, on both instances.
      await waitFor(() => relay.logs.some((l) => l.includes('CASCADE_ERR_AUTH_REVOKED_TOKEN')), { what: 'the relay told its token is revoked', timeoutMs: 20_000 });
      for (const base of [a.url, b.url]) {
        const raw = await openRawRelay(base, { token: t.body.token, answerProbe: false });
        expect(raw.reg).toMatchObject({ ok: false, error: { code: 'CASCADE_ERR_AUTH_REVOKED_TOKEN' } });
        raw.close();
      }
      expect((await alice.call<{ tokens: { id: string; revoked: boolean }[] }>('GET', '/api/me/tokens')).body.tokens.find((x) => x.id === t.body.id)?.revoked).toBe(true);
    } finally {
      await relay.stop();
    }
  });

  it("nobody revokes another account's token", async () => {
    const alice = new Client(a.url);
    await alice.call('POST', '/api/account/signin', { name: 'alice', password: PASSWORD });
    const t = await alice.call<{ id: string }>('POST', '/api/me/tokens', { kind: 'broadcast' });
    const victim = new Client(a.url);
    await victim.call('POST', '/api/account/signin', { name: 'flood0', password: PASSWORD });
    expect((await victim.call('DELETE', `/api/me/tokens/${t.body.id}`)).body).toMatchObject({ code: 'CASCADE_ERR_AUTH_FORBIDDEN' });
  });

  it('node.renewToken gives a registered relay a later-expiring token with the same id; renewal ends with revocation', async () => {
    const token = (await issueCli(['token', 'relay', '--sub', 'renewer', '--volunteer', '--ttl', '10m'])).stdout.trim();
    const raw = await openRawRelay(a.url, { token });
    try {
      const r = await raw.c.request('node.renewToken', {});
      expect(r.ok).toBe(true);
      const renewed = r.data as { token: string; expiresAt: number };
      const before = jwt.decode(token) as { jti: string; exp: number };
      const after = jwt.decode(renewed.token) as { jti: string; exp: number; sub: string; volunteer: boolean };
      expect(after).toMatchObject({ jti: before.jti, sub: 'renewer', volunteer: true });
      expect(after.exp).toBeGreaterThan(before.exp);
      expect(renewed.expiresAt).toBe(after.exp * 1000);
      // The CLI revokes in Redis directly (redis.url set): both instances refuse it from then on.
      const out = await issueCli(['token', 'revoke', before.jti], { CASCADE_REDIS_URL: inject('redisUrl') });
      expect(out.stdout).toContain(`revoked ${before.jti}`);
      await waitFor(async () => !(await raw.c.request('node.renewToken', {})).ok, { what: 'renewal refused' });
      expect(await raw.c.request('node.renewToken', {})).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_REVOKED_TOKEN' } });
      const again = await openRawRelay(b.url, { token: renewed.token, answerProbe: false });
      expect(again.reg).toMatchObject({ ok: false, error: { code: 'CASCADE_ERR_AUTH_REVOKED_TOKEN' } });
      again.close();
    } finally {
      raw.close();
    }
  });
});

describe('operator', () => {
  it('GET /api/credits needs an operator token and lists accounts with their ledger', async () => {
    expect((await new Client(a.url).call('GET', '/api/credits')).body).toMatchObject({ code: 'CASCADE_ERR_AUTH_MISSING_TOKEN' });
    const relayToken = (await issueCli(['token', 'relay', '--sub', 'x'])).stdout.trim();
    expect((await new Client(a.url).call('GET', '/api/credits', undefined, { authorization: `Bearer ${relayToken}` })).status).toBe(403);
    const operator = (await issueCli(['token', 'operator', '--sub', 'ops'])).stdout.trim();
    const r = await new Client(b.url).call<{ total: number; accounts: { name: string; balance: number }[] }>('GET', '/api/credits?limit=2', undefined, { authorization: `Bearer ${operator}` });
    expect(r.status).toBe(200);
    expect(r.body.total).toBeGreaterThanOrEqual(4);
    expect(r.body.accounts.map((x) => x.name)).toEqual(['Alice', 'victim']);
    expect(r.body.accounts[0]).toMatchObject({ balance: 3, bytesRelayed: 0 });
  });

  it('cascade token revoke <id> without Redis goes through the server (--url); a bad command line exits 2', async () => {
    const issued = await issueCli(['token', 'relay', '--sub', 'y']);
    const id = /token id (\S+),/.exec(issued.stderr)![1]!;
    const out = await issueCli(['token', 'revoke', id, '--url', c.url], { CASCADE_AUTH_SECRET: 'another-deployment-secret-0123456789' });
    expect(out).toMatchObject({ status: 0 });
    expect(out.stdout).toContain(`revoked ${id}`);
    expect((await issueCli(['token', 'revoke'])).status).toBe(2);
  });

  it('/metrics counts sign-ins by result and the revoked tokens', async () => {
    expect(await metric(a.url, 'cascade_auth_revoked_tokens')).toBeGreaterThanOrEqual(2);
    const text = await (await fetch(`${a.url}/metrics`)).text();
    expect(text).toMatch(/cascade_accounts_attempts_total\{[^}]*kind="signin",result="CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS"[^}]*\} [1-9]/);
    expect(text).toMatch(/cascade_accounts_attempts_total\{[^}]*kind="signup",result="ok"[^}]*\} [1-9]/);
  });
});

/** `cascade <args>` as an operator runs it (the test secret unless env says otherwise). */
async function issueCli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'server/dist/cli.js'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', CASCADE_AUTH_SECRET: TEST_SECRET, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
