import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultWorkerBin } from '@cascade/config';
import {
  CHROMIUM_ARGS,
  CHROMIUM_PATH,
  DOCUMENTATION_SUBNETS,
  REPO_ROOT,
  canCreateNamespaces,
  createHomeRouter,
  createTestNetwork,
  demoState,
  framesGrow,
  getJson,
  goLive,
  issueToken,
  launchChromium,
  startServer,
  startTlsProxy,
  waitFor,
  type HomeRouter,
  type NodeProcess,
  type TestNetwork,
  type TlsProxy,
} from '@cascade/testing';

const execFileP = promisify(execFile);

/**
 * Issue 12 as a new user deploys it: the origin in production mode behind an nginx TLS proxy, on
 * a public-looking network (a documentation range, so Chromium treats it as public: mixed
 * content and insecure WebSockets would be blocked). Two volunteers, each at a public-looking
 * address in its own namespace: one runs the relay from the repository, the other installed the
 * relay package and runs it behind a home router (NAT, miniupnpd) that it asks to open its
 * ports. Origin budget 1: four viewer pages on https://…/watch/<id> must all play, at least two
 * from the volunteers, with no console error about mixed content, and /status/<id> shows them.
 */
const support = await canCreateNamespaces();
if (!support.ok) console.warn(`[deployed.e2e.test] SKIPPED: cannot build network namespaces here: ${support.reason}`);

const WORKER = defaultWorkerBin(process.env);
/** Production mode takes only a strong secret (what the README's checklist makes). */
const SECRET = randomBytes(32).toString('hex');
const token = (claims: Parameters<typeof issueToken>[0]) => issueToken(claims, SECRET);
const VIEWER_PAGES = 4;

interface Spawned {
  proc: ChildProcess;
  logs: string[];
  output(): string;
  kill(): Promise<void>;
}

/** A program run inside a namespace, its output kept. */
function spawnIn(ns: string, argv: string[], env: Record<string, string>): Spawned {
  const proc = spawn('ip', ['netns', 'exec', ns, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  proc.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    proc,
    logs,
    output: () => logs.join(''),
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** What the broadcaster's encoder did per layer (CPU-limited layers show here). */
function encoderStats(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const b = (window as unknown as { cascadeBroadcast?: { producers: { kind: string; getStats(): Promise<Map<string, Record<string, unknown>>> }[] } }).cascadeBroadcast;
    const out: unknown[] = [];
    for (const p of b?.producers ?? []) {
      if (p.kind !== 'video') continue;
      for (const s of (await p.getStats()).values()) {
        if (s.type !== 'outbound-rtp') continue;
        out.push({ rid: s.rid, framesEncoded: s.framesEncoded, frameHeight: s.frameHeight, active: s.active, qlr: s.qualityLimitationReason, qld: s.qualityLimitationDurations, qlrc: s.qualityLimitationResolutionChanges });
      }
    }
    return JSON.stringify(out);
  }).catch((e: Error) => `no stats: ${e.message}`);
}

interface NodesBody { nodes: { id: string; kind: string; status: string; mediaIp?: string | null; volunteer: boolean }[] }

describe.skipIf(!support.ok)(`as deployed: HTTPS origin, volunteer relays on public addresses, one behind a home router${support.ok ? '' : ` (SKIPPED: ${support.reason})`}`, () => {
  let net: TestNetwork;
  let router: HomeRouter;
  let origin: NodeProcess;
  let proxy: TlsProxy;
  let browser: Browser;
  let broadcaster: Page;
  let dir: string;
  const relays: Spawned[] = [];
  const pages: Page[] = [];
  const consoleLines: string[] = [];
  let streamId: string;
  const ids = { direct: '', behindNat: '' };

  beforeAll(async () => {
    // ns 0: the TLS proxy's host; ns 1: a volunteer with a public address; ns 2: a home router.
    net = await createTestNetwork({ count: 3, subnet: DOCUMENTATION_SUBNETS });
    await net.verify();
    router = await createHomeRouter({ network: net, wanIndex: 2, hosts: 2 });
    const [proxyHost, volunteerHost] = net.namespaces;
    origin = await startServer({
      host: net.rootIp,
      env: {
        CASCADE_MODE: 'production',
        CASCADE_AUTH_SECRET: SECRET,
        CASCADE_HTTP_HOST: net.rootIp,
        CASCADE_HTTP_PUBLIC_URL: `https://${proxyHost!.ip}`,
        CASCADE_HTTP_TRUST_PROXY: JSON.stringify([proxyHost!.ip]),
        CASCADE_MEDIASOUP_LISTEN_IPS: JSON.stringify([{ ip: net.rootIp, announcedIp: net.rootIp }]),
        CASCADE_ORIGIN_MAX_VIEWERS: '1',
        CASCADE_TOPOLOGY_MAX_CHILDREN: '2',
      },
    });
    proxy = await startTlsProxy({ upstream: origin.url, netns: proxyHost!.name, host: proxyHost!.ip, port: 443 });

    // The volunteers trust the proxy's self-signed certificate as they would a real one.
    const relayEnv = { NODE_EXTRA_CA_CERTS: proxy.certPath, CASCADE_LOG_LEVEL: 'info' };
    const common = ['--controller', proxy.url, '--media-port', '40000', '--max-viewers', '2', '--max-children', '1'];
    // A volunteer with a public address runs the relay from a clone of the repository.
    relays.push(
      spawnIn(volunteerHost!.name, [process.execPath, path.join(REPO_ROOT, 'relay/dist/cli.js'), ...common, '--token', token({ scope: ['relay'], sub: 'alice', volunteer: true })], {
        ...relayEnv,
        MEDIASOUP_WORKER_BIN: WORKER,
      }),
    );
    // A volunteer at home installed the relay package (one command) and runs it (one command).
    dir = mkdtempSync(path.join(tmpdir(), 'cascade-deployed-'));
    const packed = await execFileP(process.execPath, [path.join(REPO_ROOT, 'scripts/pack-relay.mjs')], { cwd: REPO_ROOT, timeout: 120_000 });
    const tgz = packed.stdout.trim().split('\n').pop()!;
    const prefix = path.join(dir, 'prefix');
    await execFileP('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', tgz], {
      cwd: dir,
      env: { ...process.env, MEDIASOUP_WORKER_BIN: WORKER, NODE_PATH: '' },
      timeout: 300_000,
    });
    relays.push(
      spawnIn(router.hosts[0]!.name, [path.join(prefix, 'bin', 'cascade-relay'), ...common, '--token', token({ scope: ['relay'], sub: 'bob', volunteer: true })], {
        ...relayEnv,
        MEDIASOUP_WORKER_BIN: WORKER,
        NODE_PATH: '',
      }),
    );
    // Both registered and checked, as the controller sees them.
    const nodes = await waitFor(async () => {
      for (const r of relays) if (r.proc.exitCode !== null) throw new Error(`a relay exited: ${r.output().slice(-3000)}`);
      const b = (await getJson<NodesBody>(`${origin.url}/api/nodes`)).body;
      const ready = b.nodes?.filter((n) => n.kind === 'relay' && n.status === 'ready') ?? [];
      return ready.length === 2 ? ready : undefined;
    }, { what: 'both volunteer relays registered and ready', timeoutMs: 90_000 }).catch((err: Error) => {
      throw new Error(`${err.message}\n--- alice ---\n${relays[0]!.output().slice(-2500)}\n--- bob ---\n${relays[1]?.output().slice(-2500)}`);
    });
    ids.direct = nodes.find((n) => n.id.startsWith('alice'))!.id;
    ids.behindNat = nodes.find((n) => n.id.startsWith('bob'))!.id;

    browser = await launchChromium(CHROMIUM_PATH, [...CHROMIUM_ARGS, '--ignore-certificate-errors']);
    broadcaster = await browser.newPage();
    streamId = await goLive(broadcaster, proxy.url, `token=${token({ scope: ['broadcast'], sub: 'carol' })}&autostart=1`);
    for (let i = 0; i < VIEWER_PAGES; i++) {
      const page = await browser.newPage();
      page.on('console', (m) => consoleLines.push(`[viewer ${i}] ${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => consoleLines.push(`[viewer ${i}] pageerror: ${e.message}`));
      await page.goto(`${proxy.url}/watch/${streamId}`);
      pages.push(page);
      // One at a time: each is placed knowing where the ones before went.
      await waitFor(async () => ((await demoState(page))?.nodeId ? true : undefined), { what: `viewer page ${i} placed`, timeoutMs: 30_000 }).catch(async (err: Error) => {
        // Everything that could say why: the page's own state, where the pages before it went (and
        // why they moved), its console, what the broadcaster's encoder did, each process's log.
        const state = JSON.stringify(await demoState(page).catch(() => undefined));
        const moves = await Promise.all(pages.map((p) => p.evaluate(() => JSON.stringify((window as unknown as { cascadeDemo: { nodes?: unknown } }).cascadeDemo.nodes)).catch(() => '?')));
        throw new Error(
          `${err.message}; page state ${state}\n--- pages' nodes ---\n${moves.join('\n')}\n--- console ---\n${consoleLines.join('\n').slice(-3000)}` +
            `\n--- broadcaster ---\n${await encoderStats(broadcaster)}\n--- origin ---\n${origin.logs.join('\n').slice(-4000)}` +
            `\n--- alice ---\n${relays[0]!.output().slice(-2500)}\n--- bob ---\n${relays[1]!.output().slice(-2500)}`,
        );
      });
    }
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    for (const r of relays) await r.kill();
    await origin?.stop();
    await proxy?.stop();
    await router?.cleanup();
    await net?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('each volunteer is known by its public address; the one at home opened its ports on the router by itself', async () => {
    // The public never sees a volunteer's address; the operator does.
    const publicView = (await getJson<NodesBody>(`${origin.url}/api/nodes`)).body.nodes;
    expect(publicView.filter((n) => n.volunteer).map((n) => n.mediaIp)).toEqual([null, null]);
    const res = await fetch(`${origin.url}/api/nodes`, { headers: { authorization: `Bearer ${token({ scope: ['operator'], sub: 'ops' })}` } });
    const nodes = ((await res.json()) as NodesBody).nodes;
    expect(nodes.find((n) => n.id === ids.direct)).toMatchObject({ volunteer: true, mediaIp: net.namespaces[1]!.ip });
    expect(nodes.find((n) => n.id === ids.behindNat)).toMatchObject({ volunteer: true, mediaIp: router.wanIp });
    const mapped = router.mappings().filter((m) => m.internalIp === router.hosts[0]!.ip && m.externalPort === 40000);
    expect(mapped.map((m) => m.protocol).sort()).toEqual(['TCP', 'UDP']);
    expect(relays[1]!.output()).toMatch(/registered as bob-/);
  });

  it('all four viewer pages play over HTTPS, at least two from the volunteers, with no mixed-content error', async () => {
    for (const page of pages) await framesGrow(page, 20, 45_000);
    const served = await Promise.all(pages.map(async (p) => (await demoState(p)).nodeId));
    expect(served.filter((id) => id === ids.direct || id === ids.behindNat).length, served.join(',')).toBeGreaterThanOrEqual(2);
    expect(served).toContain(ids.behindNat);
    expect(consoleLines.filter((l) => /mixed content|insecure websocket|ws:\/\//i.test(l)), consoleLines.join('\n')).toEqual([]);
    // Every page's signalling is the deployment's one address: nothing but wss to the proxy.
    for (const page of pages) {
      const sockets = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.startsWith('ws')));
      for (const s of sockets) expect(s.startsWith(proxy.url.replace('https', 'wss'))).toBe(true);
    }
  });

  it('/status/<id> shows the viewers on the volunteers', async () => {
    const page = await browser.newPage();
    await page.goto(`${proxy.url}/status/${streamId}`);
    for (const id of [ids.direct, ids.behindNat]) {
      await waitFor(async () => (await page.locator(`[data-node-id="${id}"]`).count()) > 0, { what: `${id} on the status page`, timeoutMs: 15_000 });
    }
    const topo = (await getJson<{ nodes: { id: string; viewers: number }[] }>(`${origin.url}/api/streams/${streamId}/topology`)).body.nodes;
    expect(topo.filter((n) => n.id === ids.direct || n.id === ids.behindNat).reduce((n, x) => n + x.viewers, 0)).toBeGreaterThanOrEqual(2);
    await page.close();
  });

  it('with the router\'s UPnP and NAT-PMP off, a relay at home says in plain words which ports to forward', async () => {
    await router.stopUpnp();
    const r = spawnIn(router.hosts[1]!.name, [process.execPath, path.join(REPO_ROOT, 'relay/dist/cli.js'), '--controller', proxy.url, '--media-port', '41000', '--token', token({ scope: ['relay'], sub: 'dave', volunteer: true })], {
      NODE_EXTRA_CA_CERTS: proxy.certPath,
      MEDIASOUP_WORKER_BIN: WORKER,
    });
    try {
      await waitFor(() => (/forward/i.test(r.output()) && r.output().includes('41000') ? true : undefined), { what: 'the plain-words forwarding instructions', timeoutMs: 60_000 });
      expect(r.output()).toContain(router.hosts[1]!.ip);
    } finally {
      await r.kill();
      await router.startUpnp();
    }
  });
});
