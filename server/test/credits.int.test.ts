import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import {
  framesGrow,
  launchChromium,
  startRedis,
  startRelay,
  startServer,
  goLive,
  issueToken,
  demoState,
  waitFor,
  type NodeProcess,
  type RedisServer,
} from '@cascade/testing';

/**
 * Credits end to end (issue 16): two volunteers' relays, each on its own account, serve
 * Chromium viewers of a live stream for a while; each account is credited what its relay's
 * viewers really received, measured by the test in the pages themselves. The origin, which
 * serves nobody here, earns nothing; the whole ledger is on Redis.
 */
let STREAM = '';
let broadcastPage: Page;
const PASSWORD = 'correct horse battery';
let redis: RedisServer;
let origin: NodeProcess;
let browser: Browser;
const relays: (NodeProcess & { nodeId: string })[] = [];
const pages: Page[] = [];
const cookies = new Map<string, string>();

async function call<T>(method: string, path: string, cookie?: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(origin.url + path, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(cookie ? { cookie } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const set = res.headers.get('set-cookie');
  return { status: res.status, body: (await res.json()) as T, ...(set ? { cookie: set.split(';')[0] } : {}) };
}

/** Sign up `name` and start a relay with the token its Volunteer page would show. */
async function volunteer(name: string): Promise<NodeProcess & { nodeId: string }> {
  const res = await fetch(`${origin.url}/api/account/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password: PASSWORD }) });
  expect(res.status).toBe(201);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  cookies.set(name, cookie);
  const t = await call<{ token: string }>('POST', '/api/me/tokens', cookie, { kind: 'relay' });
  expect(t.status).toBe(201);
  const relay = await startRelay({ controllerUrl: origin.url, token: t.body.token, maxViewers: 2, maxChildren: 0 });
  relays.push(relay);
  return relay;
}

/** The node serving a watch page and the bytes of RTP its current consumers received (inbound-rtp, read by the test), read together. */
const received = (page: Page) =>
  page.evaluate(async () => {
    const w = (window as unknown as { cascadeWatch?: { nodeId?: string; consumers: { getStats(): Promise<Map<string, { type: string; bytesReceived?: number }>> }[] } }).cascadeWatch;
    const nodeId = w?.nodeId ?? '';
    let bytes = 0;
    for (const c of w?.consumers ?? []) (await c.getStats()).forEach((s) => s.type === 'inbound-rtp' && (bytes += s.bytesReceived ?? 0));
    return { nodeId, bytes };
  });

/**
 * What each page received from each node, sampled every 500 ms: a page that moves (make-before-
 * break: an `unresponsive` move on a loaded machine, seen in CI) counts from zero on its new
 * consumers, so what it had from the node it left is kept under that node (less the last half
 * second at most). Read from the pages' current consumers alone, a moved page's earlier bytes were
 * missing and its relay looked over-credited (12 % in one CI run).
 */
class ReceivedByNode {
  readonly #done: Map<string, number>[];
  readonly #last: { nodeId: string; bytes: number }[];
  constructor(readonly pages: Page[]) {
    this.#done = pages.map(() => new Map());
    this.#last = pages.map(() => ({ nodeId: '', bytes: 0 }));
  }
  async sample(): Promise<void> {
    for (const [i, p] of this.pages.entries()) {
      const now = await received(p);
      const last = this.#last[i]!;
      if (last.nodeId && (now.nodeId !== last.nodeId || now.bytes < last.bytes)) this.#add(i, last);
      this.#last[i] = now;
    }
  }
  /** Bytes from `nodeId` over every page, the latest samples included. */
  from(nodeId: string): number {
    return this.#done.reduce((n, m, i) => n + (m.get(nodeId) ?? 0) + (this.#last[i]!.nodeId === nodeId ? this.#last[i]!.bytes : 0), 0);
  }
  #add(i: number, s: { nodeId: string; bytes: number }): void {
    this.#done[i]!.set(s.nodeId, (this.#done[i]!.get(s.nodeId) ?? 0) + s.bytes);
  }
}

const credited = async (name: string) => (await call<{ bytesRelayed: number; balance: number }>('GET', '/api/me/credits', cookies.get(name))).body;

beforeAll(async () => {
  redis = await startRedis();
  origin = await startServer({
    env: {
      CASCADE_REDIS_URL: redis.url,
      CASCADE_ORIGIN_MAX_VIEWERS: '0',
      CASCADE_CREDITS_RECEIPT_INTERVAL_MS: '500',
      CASCADE_CREDITS_SETTLE_INTERVAL_MS: '1000',
      CASCADE_CREDITS_POINTS_PER_GB: '1000',
    },
  });
  browser = await launchChromium();
  broadcastPage = await browser.newPage();
  STREAM = await goLive(broadcastPage, origin.url);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  for (const r of relays) await r.stop();
  await origin?.stop();
  await redis?.stop();
});

describe('credits for what viewers really received', () => {
  it('two volunteers, two viewers each through their relays', async () => {
    const alice = await volunteer('alice');
    const bob = await volunteer('bob');
    for (let i = 0; i < 4; i++) {
      const page = await browser.newPage();
      pages.push(page);
      await page.goto(`${origin.url}/watch/${STREAM}`);
      await waitFor(async () => (await demoState(page))?.state === 'live', { what: `viewer ${i} live`, timeoutMs: 30_000 }).catch(async (err) => {
        // Seen twice before stop 31: the fourth viewer refused with NODE_CAPACITY. The deployed e2e
        // test's same failure was traced to viewers leaving honest nodes when the broadcaster page
        // stopped its top layer for a moment (fixed by the origin's layer tags); here, unconfirmed.
        // What the controller counted where, and each page's moves, tell a leaked place from a move.
        const topology = await call('GET', `/api/streams/${STREAM}/topology`).catch((e: Error) => e.message);
        const moves = await Promise.all(pages.map((p) => p.evaluate(() => (window as unknown as { cascadeDemo: { nodes?: unknown } }).cascadeDemo.nodes).catch(() => undefined)));
        throw new Error(`${(err as Error).message}: ${JSON.stringify(await demoState(page))}; topology ${JSON.stringify(topology)}; each page's nodes ${JSON.stringify(moves)}`);
      });
    }
    const served = await Promise.all(pages.map(async (p) => (await demoState(p)).nodeId));
    expect(served.filter((n) => n === alice.nodeId)).toHaveLength(2);
    expect(served.filter((n) => n === bob.nodeId)).toHaveLength(2);
    await Promise.all(pages.map((p) => framesGrow(p, 30, 60_000)));
  });

  it("each account is credited within 5 % of what its relay's viewers received; nobody else earns", async () => {
    // Half a minute of streaming, then each viewer's total is read and its page closed at once:
    // its receipts (every 500 ms) covered all of it but the last half second.
    const byNode = new ReceivedByNode(pages);
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      await byNode.sample();
      await delay(500);
    }
    const states = await Promise.all(pages.map((p) => demoState(p)));
    expect(states.map((d) => d.reconnects)).toEqual([0, 0, 0, 0]);
    await byNode.sample();
    for (const p of pages) await p.close();
    console.log(`[credits] pages' nodes ${JSON.stringify(states.map((d) => d.nodes?.map((n) => `${n.nodeId} (${n.why})`)))}`);
    for (const [name, relay] of [['alice', relays[0]!], ['bob', relays[1]!]] as const) {
      const measured = byNode.from(relay.nodeId);
      expect(measured).toBeGreaterThan(100_000);
      // Settled every second: wait until the credited figure stops moving.
      let last = -1;
      const got = await waitFor(async () => {
        const c = await credited(name);
        const stable = c.bytesRelayed > 0 && c.bytesRelayed === last;
        last = c.bytesRelayed;
        await delay(1500);
        return stable ? c : undefined;
      }, { what: `${name}'s credit to settle`, timeoutMs: 30_000 });
      console.log(`[credits] ${name}: viewers received ${measured} B, credited ${got.bytesRelayed} B (${((got.bytesRelayed / measured - 1) * 100).toFixed(2)} %), balance ${got.balance}`);
      expect(Math.abs(got.bytesRelayed - measured) / measured).toBeLessThan(0.05);
      expect(got.balance).toBeGreaterThan(0);
    }
    const all = await call<{ accounts: { name: string; bytesRelayed: number }[] }>('GET', '/api/credits', undefined);
    expect(all.status).toBe(401);
    const operator = await fetch(`${origin.url}/api/credits`, { headers: { authorization: `Bearer ${issueToken({ scope: ['operator'], sub: 'ops' })}` } });
    const listed = ((await operator.json()) as { accounts: { name: string; bytesRelayed: number }[] }).accounts;
    expect(listed.filter((a) => a.bytesRelayed > 0).map((a) => a.name).sort()).toEqual(['alice', 'bob']);
  });
});
