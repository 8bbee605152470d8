import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DOCUMENTATION_SUBNETS,
  canCreateNamespaces,
  createHomeRouter,
  createTestNetwork,
  nodeInNamespace,
  type HomeRouter,
  type NsNode,
  type TestNamespace,
  type TestNetwork,
} from '@cascade/testing';

/**
 * The home-router harness itself (testing/src/natRouter.ts): NAT from the LAN, nothing in from
 * the WAN unless miniupnpd mapped it, UPnP mappings that really forward, miniupnpd on and off.
 * The WAN is a documentation range (public-looking, as a volunteer's router has).
 */
const support = await canCreateNamespaces();
if (!support.ok) console.warn(`[natRouter.int.test] SKIPPED: cannot build network namespaces here: ${support.reason}`);

/** On the WAN host: TCP and UDP servers that report who connected (as the far side sees them). */
const WHO_IS_IT = `
import net from 'node:net'; import dgram from 'node:dgram';
const { ip, port } = JSON.parse(process.argv[1]);
net.createServer((s) => { console.log(JSON.stringify({ tcpFrom: s.remoteAddress })); s.end(); }).listen(port, ip, () => {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => { console.log(JSON.stringify({ udpFrom: r.address })); u.send('ok', r.port, r.address); });
  u.bind(port, ip, () => console.log(JSON.stringify({ ready: true })));
});`;

/** Connect by TCP and send one UDP datagram to `ip:port`, report what happened. */
const KNOCK = `
import net from 'node:net'; import dgram from 'node:dgram';
const { ip, port, timeoutMs } = JSON.parse(process.argv[1]);
const tcp = await new Promise((resolve) => {
  const s = net.connect({ host: ip, port, timeout: timeoutMs });
  let data = '';
  s.on('data', (d) => (data += d));
  s.on('end', () => resolve({ ok: true, data }));
  s.on('timeout', () => { s.destroy(); resolve({ ok: false, why: 'timeout' }); });
  s.on('error', (e) => resolve({ ok: false, why: e.code }));
});
const udp = await new Promise((resolve) => {
  const u = dgram.createSocket('udp4');
  const t = setTimeout(() => { u.close(); resolve({ ok: false, why: 'timeout' }); }, timeoutMs);
  u.on('message', (m) => { clearTimeout(t); u.close(); resolve({ ok: true, data: m.toString() }); });
  u.send('ping', port, ip);
});
console.log(JSON.stringify({ tcp, udp }));`;

/** In the private namespace: servers on `port`, and a UPnP-IGD mapping of it (TCP and UDP) through the router. */
const SERVE_AND_MAP = `
import net from 'node:net'; import dgram from 'node:dgram';
import { upnpNat } from '@achingbrain/nat-port-mapper';
const { ip, port } = JSON.parse(process.argv[1]);
await new Promise((r) => net.createServer((s) => s.end('hello from ' + ip)).listen(port, ip, r));
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send('pong from ' + ip, r.port, r.address));
await new Promise((r) => u.bind(port, ip, r));
const client = upnpNat({ autoRefresh: false, description: 'natRouter.int.test' });
for await (const gw of client.findGateways({ signal: AbortSignal.timeout(10000) })) {
  const signal = AbortSignal.timeout(10000);
  const udp = await gw.map(port, ip, { protocol: 'udp', signal });
  const tcp = await gw.map(port, ip, { protocol: 'tcp', signal });
  console.log(JSON.stringify({ gateway: gw.host, externalIp: await gw.externalIp({ signal }), udp, tcp }));
  break;
}
console.log(JSON.stringify({ done: true }));
process.stdin.resume();`;

/** A NAT-PMP external address request (RFC 6886) to the gateway: answered or not. */
const PMP_ADDRESS = `
import dgram from 'node:dgram';
const { gateway, timeoutMs } = JSON.parse(process.argv[1]);
const s = dgram.createSocket('udp4');
const t = setTimeout(() => { console.log(JSON.stringify({ answered: false })); process.exit(0); }, timeoutMs);
s.on('message', (m) => { clearTimeout(t); console.log(JSON.stringify({ answered: true, result: m.readUInt16BE(2), ip: [...m.subarray(8, 12)].join('.') })); process.exit(0); });
s.send(Buffer.from([0, 0]), 5351, gateway);`;

async function once(ns: string, code: string, arg: unknown): Promise<Record<string, unknown>> {
  const p = nodeInNamespace(ns, code, arg);
  try {
    return await p.next(() => true, 30_000, 'its report');
  } finally {
    await p.kill();
  }
}

describe.skipIf(!support.ok)(`home router namespace with miniupnpd${support.ok ? '' : ` (SKIPPED: ${support.reason})`}`, () => {
  let net: TestNetwork;
  let router: HomeRouter;
  let wanHost: TestNamespace;
  let home: TestNamespace;
  let whoIsIt: NsNode;
  const PORT = 41_000;

  beforeAll(async () => {
    net = await createTestNetwork({ count: 2, subnet: DOCUMENTATION_SUBNETS });
    router = await createHomeRouter({ network: net, wanIndex: 0, hosts: 1 });
    wanHost = net.namespaces[1]!;
    home = router.hosts[0]!;
    console.info(`[natRouter] WAN ${net.subnet} (shaping ${net.shaping}); router ${router.wanIp} / ${router.lanIp}; home ${home.ip}; WAN host ${wanHost.ip}`);
    whoIsIt = nodeInNamespace(wanHost.name, WHO_IS_IT, { ip: wanHost.ip, port: PORT });
    await whoIsIt.next((m) => m.ready === true, 20_000, 'WAN servers ready');
  });

  afterAll(async () => {
    await whoIsIt?.kill();
    await router?.cleanup();
    await net?.cleanup();
  });

  it('a private namespace reaches the WAN with its source rewritten to the router WAN address', async () => {
    expect(home.ip.startsWith('192.168.77.')).toBe(true);
    const r = (await once(home.name, KNOCK, { ip: wanHost.ip, port: PORT, timeoutMs: 5000 })) as { tcp: { ok: boolean }; udp: { ok: boolean } };
    expect(r.tcp.ok).toBe(true);
    expect(r.udp.ok).toBe(true);
    await whoIsIt.next((m) => 'tcpFrom' in m, 5000, 'TCP seen on the WAN');
    await whoIsIt.next((m) => 'udpFrom' in m, 5000, 'UDP seen on the WAN');
    const from = whoIsIt.messages.flatMap((m) => [m.tcpFrom, m.udpFrom]).filter(Boolean);
    expect(new Set(from)).toEqual(new Set([router.wanIp]));
  });

  it('nothing from the WAN reaches a private port that was not mapped', async () => {
    const server = nodeInNamespace(home.name, WHO_IS_IT, { ip: home.ip, port: PORT + 1 });
    try {
      await server.next((m) => m.ready === true, 20_000, 'private servers ready');
      const r = (await once(wanHost.name, KNOCK, { ip: router.wanIp, port: PORT + 1, timeoutMs: 2000 })) as { tcp: { ok: boolean }; udp: { ok: boolean } };
      expect(r.tcp.ok).toBe(false);
      expect(r.udp.ok).toBe(false);
      expect(server.messages.filter((m) => 'tcpFrom' in m || 'udpFrom' in m)).toEqual([]);
    } finally {
      await server.kill();
    }
  });

  it('a UPnP mapping through miniupnpd lets a WAN host reach a UDP and a TCP port in the private namespace', async () => {
    const mapper = nodeInNamespace(home.name, SERVE_AND_MAP, { ip: home.ip, port: PORT + 2 });
    try {
      const report = (await mapper.next((m) => 'gateway' in m || 'done' in m, 30_000, 'UPnP mapping')) as {
        gateway?: string;
        externalIp: string;
        udp: { externalPort: number };
        tcp: { externalPort: number };
      };
      expect(report.gateway).toBe(router.lanIp);
      expect(report.externalIp).toBe(router.wanIp);
      expect(report.udp.externalPort).toBe(PORT + 2);
      expect(report.tcp.externalPort).toBe(PORT + 2);
      const held = router.mappings().filter((m) => m.internalIp === home.ip && m.internalPort === PORT + 2);
      expect(held.map((m) => m.protocol).sort()).toEqual(['TCP', 'UDP']);

      const r = (await once(wanHost.name, KNOCK, { ip: router.wanIp, port: PORT + 2, timeoutMs: 5000 })) as { tcp: { ok: boolean; data: string }; udp: { ok: boolean; data: string } };
      expect(r.tcp).toEqual({ ok: true, data: `hello from ${home.ip}` });
      expect(r.udp).toEqual({ ok: true, data: `pong from ${home.ip}` });
    } finally {
      await mapper.kill();
    }
  });

  it('stopUpnp() switches miniupnpd off and startUpnp() back on', async () => {
    const before = await once(home.name, PMP_ADDRESS, { gateway: router.lanIp, timeoutMs: 3000 });
    expect(before).toEqual({ answered: true, result: 0, ip: router.wanIp });
    await router.stopUpnp();
    expect(router.upnpRunning).toBe(false);
    expect(await once(home.name, PMP_ADDRESS, { gateway: router.lanIp, timeoutMs: 1500 })).toEqual({ answered: false });
    await router.startUpnp();
    expect(router.upnpRunning).toBe(true);
    expect(await once(home.name, PMP_ADDRESS, { gateway: router.lanIp, timeoutMs: 3000 })).toEqual({ answered: true, result: 0, ip: router.wanIp });
  });

  it('cleanup() removes the private namespaces and leaves the router namespace a plain member', async () => {
    const r2 = await createHomeRouter({ network: net, wanIndex: 1, hosts: 2, lan: '192.168.78.0/24', upnp: false });
    const names = r2.hosts.map((h) => h.name);
    await r2.cleanup();
    await r2.cleanup();
    const { execFileSync } = await import('node:child_process');
    const list = execFileSync('ip', ['netns', 'list']).toString();
    for (const n of names) expect(list).not.toContain(n);
    const links = execFileSync('ip', ['-n', wanHost.name, '-o', 'link', 'show']).toString();
    expect(links).not.toContain('lan0');
    expect(execFileSync('ip', ['netns', 'exec', wanHost.name, 'sysctl', '-n', 'net.ipv4.ip_forward']).toString().trim()).toBe('0');
    expect(execFileSync('ip', ['netns', 'exec', wanHost.name, 'nft', 'list', 'tables']).toString()).not.toContain('homerouter');
  });
});
