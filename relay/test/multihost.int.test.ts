import { execFile, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  canCreateNamespaces,
  createTestNetwork,
  freePort,
  getJson,
  issueToken,
  relayInNamespace,
  metric,
  startChromiumBroadcaster,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type Shaping,
  type TestBroadcaster,
  type TestNetwork,
} from '@cascade/testing';

interface Topology {
  depth: number;
  viewers: number;
  nodes: { id: string; kind: string; parent: string | null; depth: number; viewers: number; children: number }[];
}
interface NodesResponse {
  nodes: { id: string; kind: string; status: string; alive: boolean; url: string; mediaIp: string }[];
}

/**
 * The relay tree across "hosts": the origin in the root namespace and each relay in its own
 * network namespace with its own address and a delayed link (see testing/src/netns.ts), so
 * every pipe, probe and viewer connection crosses a real network path instead of loopback.
 * Origin budget 1 viewer, K = 2, four relays of one viewer each: five viewers force depth 2.
 */
const support = await canCreateNamespaces();
if (!support.ok) console.warn(`[multihost.int.test] SKIPPED: cannot build network namespaces here: ${support.reason}`);

/** One-way delay of each relay namespace's link (ms); the fifth namespace is for the unreachable relay. */
const DELAYS_MS = [20, 30, 40, 25, 20];
const RELAYS = 4;
/** Every relay listens on the same port: each namespace has its own port space. */
const RELAY_PORT = 8090;
/** How delays are applied (testing/src/netns.ts); `none` checks the plain bridge layout. Default auto. */
const SHAPING = (process.env.CASCADE_TEST_NETNS_SHAPING ?? 'auto') as Shaping | 'auto';
const execFileP = promisify(execFile);

let net: TestNetwork;
let origin: NodeProcess;
let originPort: number;
const relays: (NodeProcess & { nodeId: string; ip: string; ns: string; index: number })[] = [];
let broadcaster: TestBroadcaster;
const viewers: NodeViewer[] = [];

function killOrigin(): void {
  origin?.proc.kill('SIGKILL');
}


describe.skipIf(!support.ok)(`relay tree across network namespaces${support.ok ? '' : ` (SKIPPED: ${support.reason})`}`, () => {
  beforeAll(async () => {
    net = await createTestNetwork({ count: DELAYS_MS.length, delayMs: DELAYS_MS, shaping: SHAPING });
    console.info(
      `[multihost] network ${net.subnet}, root ${net.rootIp}; ${net.namespaces.map((n) => `${n.ip} (+${n.delayMs} ms)`).join(', ')}; shaping: ${net.shaping} (${net.shapingNote})`,
    );
    await net.verify();
    originPort = await freePort();
    origin = await startServer({
      port: originPort,
      host: net.rootIp,
      env: {
        CASCADE_ORIGIN_MAX_VIEWERS: '1',
        CASCADE_TOPOLOGY_MAX_CHILDREN: '2',
        CASCADE_HTTP_PUBLIC_URL: `http://${net.rootIp}:${originPort}`,
        CASCADE_MEDIASOUP_LISTEN_IPS: JSON.stringify([{ ip: net.rootIp, announcedIp: net.rootIp }]),
      },
    });
    // Relays die with their namespaces; the origin lives in the root one: don't leave it behind if the run is interrupted.
    process.once('exit', killOrigin);
    for (let i = 0; i < RELAYS; i++) {
      const ns = net.namespaces[i]!;
      const relay = await startRelay({
        ...relayInNamespace(ns, RELAY_PORT),
        controllerUrl: origin.url,
        token: issueToken({ scope: ['relay'], sub: `host${i + 1}` }),
        maxViewers: 1,
        maxChildren: 2,
      });
      relays.push({ ...relay, ip: ns.ip, ns: ns.name, index: i });
    }
    // The page itself is loaded from localhost (getUserMedia needs a secure context); its
    // media goes to the origin's announced test-subnet address.
    broadcaster = await startChromiumBroadcaster(`http://127.0.0.1:${originPort}`);
  });

  afterAll(async () => {
    try {
      for (const v of viewers) v.stop();
      await broadcaster?.stop();
      await Promise.all(relays.map((r) => r.stop()));
      await origin?.stop();
    } finally {
      process.off('exit', killOrigin);
      await net?.cleanup();
    }
  });

  it('the links carry their delay (a TCP handshake to each relay takes at least its round trip)', async () => {
    // A lower bound only: a busy machine makes handshakes slower, never faster than the link.
    if (net.shaping === 'none') console.warn(`[multihost] no delay applied: ${net.shapingNote}`);
    expect(net.shaping, net.shapingNote).not.toBe('none');
    for (const r of relays) {
      const started = performance.now();
      await new Promise<void>((resolve, reject) => {
        const socket = createConnection({ host: r.ip, port: RELAY_PORT }, () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      });
      const delay = net.namespaces.find((n) => n.ip === r.ip)!.delayMs;
      expect(performance.now() - started, r.ip).toBeGreaterThanOrEqual(2 * delay * 0.9);
    }
  });

  it('relays are registered under their namespace addresses, not loopback', async () => {
    const body = await waitFor(async () => {
      const b = (await getJson<NodesResponse>(`${origin.url}/api/nodes`)).body;
      return b.nodes.filter((n) => n.kind === 'relay' && n.status === 'ready').length === RELAYS ? b : undefined;
    }, { what: 'every relay registered and ready' });
    const byId = new Map(body.nodes.map((n) => [n.id, n]));
    expect(byId.size).toBe(RELAYS + 1);
    for (const r of relays) {
      expect(byId.get(r.nodeId)).toMatchObject({ kind: 'relay', status: 'ready', alive: true, mediaIp: r.ip });
    }
    const originNode = body.nodes.find((n) => n.kind === 'origin')!;
    expect(originNode).toMatchObject({ url: `http://${net.rootIp}:${originPort}`, mediaIp: net.rootIp });
    for (const n of body.nodes) expect(`${n.url} ${n.mediaIp}`).not.toMatch(/127\.0\.0\.1|localhost|\[::1\]/);
  });

  it('viewers beyond the origin budget are served by relays at their namespace addresses, in a tree of depth >= 2', async () => {
    for (let i = 0; i < RELAYS + 1; i++) viewers.push(await startNodeViewer(origin.url, broadcaster.streamId));
    const served = viewers.map((v) => v.watch.nodeId!);
    expect(new Set(served).size).toBe(RELAYS + 1);
    const topo = await waitFor(async () => {
      const t = (await getJson<Topology>(`${origin.url}/api/streams/${broadcaster.streamId}/topology`)).body;
      return t.nodes.length === RELAYS + 1 ? t : undefined;
    }, { what: 'every relay in the topology', timeoutMs: 30_000 });
    expect(topo.depth).toBeGreaterThanOrEqual(2);
    const byId = new Map(topo.nodes.map((n) => [n.id, n]));
    for (const n of topo.nodes) expect(topo.nodes.filter((c) => c.parent === n.id).length).toBeLessThanOrEqual(2);
    for (const n of topo.nodes.filter((x) => x.kind === 'relay')) {
      const parent = byId.get(n.parent!)!;
      expect(parent.depth).toBe(n.depth - 1);
      if (n.depth >= 2) expect(parent.kind).toBe('relay');
    }
    const ips = new Map((await getJson<NodesResponse>(`${origin.url}/api/nodes`)).body.nodes.map((n) => [n.id, n.mediaIp]));
    const relayIps = new Set(relays.map((r) => r.ip));
    expect(served.filter((id) => relayIps.has(ips.get(id)!)).length).toBe(RELAYS);
  });

  it('every viewer receives media (frames grow)', async () => {
    const before = viewers.map((v) => ({ ...v.counters }));
    await waitFor(() => viewers.every((v, i) => v.counters.frames >= before[i]!.frames + 30 && v.counters.bytes > before[i]!.bytes), {
      what: 'every viewer to receive 30 more frames',
      timeoutMs: 45_000,
    });
  });

  it('pipes cross the namespace links: each relay receives media over its own link; relays talk to no one but the controller', async () => {
    const sample = () =>
      Promise.all(relays.map(async (r) => ({ metric: await metric(r.url, 'cascade_media_bytes_received_total'), link: await net.linkBytes(r.index) })));
    const before = await sample();
    // Media is the only thing that can move 100 kB into a relay's namespace in this test.
    await waitFor(async () => {
      const now = await sample();
      return now.every((s, i) => s.metric > before[i]!.metric + 100_000 && s.link.rx > before[i]!.link.rx + 100_000);
    }, { what: 'every relay to receive 100 kB more media over its namespace link', timeoutMs: 45_000 });

    const topo = (await getJson<Topology>(`${origin.url}/api/streams/${broadcaster.streamId}/topology`)).body;
    const deep = topo.nodes.filter((n) => n.kind === 'relay' && n.depth >= 2);
    expect(deep.length).toBeGreaterThan(0);
    for (const n of deep) {
      const child = relays.find((r) => r.nodeId === n.id)!;
      const parent = relays.find((r) => r.nodeId === n.parent)!;
      expect(parent.ns).not.toBe(child.ns);
    }
    // Every relay's TCP connections, seen from inside its namespace, go to the controller only: the
    // pipe's signalling (and every viewer's) reaches it through its control connection.
    for (const r of relays) {
      const { stdout } = await execFileP('ip', ['netns', 'exec', r.ns, 'ss', '-Htn', 'state', 'established'], { timeout: 10_000 });
      // Local address, peer address; connections to the relay's own status page (the harness reading it) aside.
      const peers = [...stdout.matchAll(/(\S+):(\d+)\s+(\d+\.\d+\.\d+\.\d+):(\d+)\s*$/gm)].filter((m) => Number(m[2]) !== RELAY_PORT).map((m) => `${m[3]}:${m[4]}`);
      expect(peers.length, stdout).toBeGreaterThan(0);
      expect(peers.filter((p) => p !== `${net.rootIp}:${originPort}`), stdout).toEqual([]);
    }
  });

  it('a relay announcing a media address nobody answers on is refused: CASCADE_ERR_RELAY_UNREACHABLE, exit code 2', async () => {
    const ns = net.namespaces[RELAYS]!;
    const proc = spawn(
      'ip',
      [
        'netns', 'exec', ns.name, process.execPath, path.join(REPO_ROOT, 'relay/dist/cli.js'),
        '--controller', origin.url,
        '--token', issueToken({ scope: ['relay'], sub: 'misconfigured' }),
        '--port', String(RELAY_PORT),
        '--listen-ip', ns.ip,
        // On the test subnet but held by nobody: the controller's UDP probe is lost.
        '--media-ip', net.unusedIp,
        '--media-port', '0',
        '--http-host', ns.ip,
        '--max-viewers', '1',
      ],
      { env: { ...process.env, CASCADE_LOG_LEVEL: 'info', CASCADE_MEDIASOUP_NUM_WORKERS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    // The probe times out after topology.probeTimeoutMs (3 s by default); 60 s is a ceiling.
    let ceiling: ReturnType<typeof setTimeout> | undefined;
    let code: number | null;
    try {
      code = await Promise.race([
        exited,
        new Promise<never>((_, reject) => (ceiling = setTimeout(() => reject(new Error(`relay still running after 60 s:\n${output}`)), 60_000))),
      ]);
    } finally {
      clearTimeout(ceiling);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    expect(code, output).toBe(2);
    expect(output).toContain('CASCADE_ERR_RELAY_UNREACHABLE');
    const { body } = await getJson<NodesResponse>(`${origin.url}/api/nodes`);
    expect(body.nodes.filter((n) => n.mediaIp === net.unusedIp && n.status === 'ready')).toEqual([]);
    // The tree kept working meanwhile.
    expect(relays.every((r) => r.proc.exitCode === null)).toBe(true);
  });
});
