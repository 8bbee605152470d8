import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DOCUMENTATION_SUBNETS,
  canCreateNamespaces,
  createHomeRouter,
  createTestNetwork,
  nodeInNamespace,
  waitFor,
  type HomeRouter,
  type NsNode,
  type TestNamespace,
  type TestNetwork,
} from '@cascade/testing';
import type { PortMappingStatus } from '@cascade/relay';

/**
 * The relay's PortMapper against Debian's miniupnpd in a home-router namespace (testing/src/natRouter.ts):
 * the PortMapper runs in the private namespace behind the router, a host on the WAN side (a
 * documentation range) checks what really got through.
 */
const support = await canCreateNamespaces();
if (!support.ok) console.warn(`[portMapping.int.test] SKIPPED: cannot build network namespaces here: ${support.reason}`);

/** In the private namespace: servers on the media port (TCP, UDP) and the first pipe port (UDP), and a PortMapper; "close" on stdin closes it. */
const MAPPER = `
import net from 'node:net'; import dgram from 'node:dgram';
import { silentLogger } from '@cascade/protocol';
import { createPortMapper } from '@cascade/relay';
const { ip, mediaPort, pipes, leaseSeconds, methods, retryMs, requestTimeoutMs = 2000 } = JSON.parse(process.argv[1]);
const print = (o) => console.log(JSON.stringify(o));
await new Promise((r) => net.createServer((s) => s.end('media tcp ' + ip)).listen(mediaPort, ip, r));
for (const port of [mediaPort, pipes.min]) {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send('udp ' + port + ' ' + ip, r.port, r.address));
  await new Promise((r) => u.bind(port, ip, r));
}
const m = await createPortMapper({ mediaPort, pipePorts: pipes, leaseSeconds, methods, retryPolicy: { nextRetryDelayMs: () => retryMs }, requestTimeoutMs }, { logger: silentLogger });
for (const event of ['mapped', 'renewed', 'failed']) m.on(event, (status) => print({ event, status }));
m.observer.on('close', () => print({ event: 'observer-close' }));
print({ event: 'started', status: m.status });
process.stdin.on('data', async (d) => {
  if (String(d).includes('close')) { await m.close(); print({ event: 'closed', status: m.status }); }
});`;

/** From the WAN side: TCP connect and UDP datagrams to ip:port(s); what came back. */
const KNOCK = `
import net from 'node:net'; import dgram from 'node:dgram';
const { ip, tcpPort, udpPorts, timeoutMs } = JSON.parse(process.argv[1]);
const tcp = await new Promise((resolve) => {
  const s = net.connect({ host: ip, port: tcpPort, timeout: timeoutMs });
  let data = '';
  s.on('data', (d) => (data += d));
  s.on('end', () => resolve(data));
  s.on('timeout', () => { s.destroy(); resolve(null); });
  s.on('error', () => resolve(null));
});
const udp = [];
for (const port of udpPorts) {
  udp.push(await new Promise((resolve) => {
    const u = dgram.createSocket('udp4');
    const t = setTimeout(() => { u.close(); resolve(null); }, timeoutMs);
    u.on('message', (m) => { clearTimeout(t); u.close(); resolve(m.toString()); });
    u.send('ping', port, ip);
  }));
}
console.log(JSON.stringify({ tcp, udp }));`;

interface Knock {
  tcp: string | null;
  udp: (string | null)[];
}

describe.skipIf(!support.ok)(`PortMapper against miniupnpd in a home-router namespace${support.ok ? '' : ` (SKIPPED: ${support.reason})`}`, () => {
  let net: TestNetwork;
  let router: HomeRouter;
  let home: TestNamespace;
  let wanHost: TestNamespace;

  beforeAll(async () => {
    net = await createTestNetwork({ count: 2, subnet: DOCUMENTATION_SUBNETS });
    router = await createHomeRouter({ network: net, wanIndex: 0, hosts: 1 });
    home = router.hosts[0]!;
    wanHost = net.namespaces[1]!;
    console.info(`[portMapping] router WAN ${router.wanIp}, LAN ${router.lanIp}; home ${home.ip}; WAN host ${wanHost.ip}`);
  });

  afterAll(async () => {
    await router?.cleanup();
    await net?.cleanup();
  });

  async function knock(tcpPort: number, udpPorts: number[], timeoutMs = 4000): Promise<Knock> {
    const p = nodeInNamespace(wanHost.name, KNOCK, { ip: router.wanIp, tcpPort, udpPorts, timeoutMs });
    try {
      return (await p.next(() => true, 30_000, 'knock result')) as unknown as Knock;
    } finally {
      await p.kill();
    }
  }

  const event = (p: NsNode, name: string, what = name) => p.next((m) => m.event === name, 30_000, what).then((m) => m.status as PortMappingStatus);

  for (const [method, mediaPort] of [['upnp', 42_000], ['nat-pmp', 43_000]] as const) {
    it(`${method}: maps the media port and pipe ports, visible from the WAN, renews them, removes them on close`, async () => {
      const pipes = { min: mediaPort + 100, max: mediaPort + 103 };
      const mapper = nodeInNamespace(home.name, MAPPER, { ip: home.ip, mediaPort, pipes, leaseSeconds: 8, methods: [method], retryMs: 1000 });
      try {
        const started = await event(mapper, 'started');
        expect(started).toMatchObject({ state: 'mapped', method, gateway: router.lanIp, internalIp: home.ip, externalIp: router.wanIp, missing: [], behindAnotherNat: false });
        expect(started.message).toBe(
          `your router (${router.lanIp}, ${method === 'upnp' ? 'UPnP' : 'NAT-PMP'}) opened UDP and TCP ${mediaPort} and UDP ${pipes.min}-${pipes.max} for this computer (${home.ip}); the internet reaches it at ${router.wanIp}`,
        );
        const mine = () => router.mappings().filter((m) => m.internalIp === home.ip && m.internalPort >= mediaPort && m.internalPort <= pipes.max);
        expect(mine().map((m) => `${m.protocol} ${m.externalPort}`).sort()).toEqual([`TCP ${mediaPort}`, `UDP ${mediaPort}`, ...[0, 1, 2, 3].map((i) => `UDP ${pipes.min + i}`)].sort());

        // Through the router from the WAN: TCP and UDP media port, a UDP pipe port.
        expect(await knock(mediaPort, [mediaPort, pipes.min])).toEqual({ tcp: `media tcp ${home.ip}`, udp: [`udp ${mediaPort} ${home.ip}`, `udp ${pipes.min} ${home.ip}`] });

        // Renewed at half the 8 s lease: the router's expiry moves forward.
        const firstExpiry = Math.max(...mine().map((m) => m.expiresAt));
        await event(mapper, 'renewed');
        await waitFor(() => Math.min(...mine().map((m) => m.expiresAt)) > firstExpiry, { timeoutMs: 10_000, what: 'lease expiry moved forward' });
        // Past the first lease, the mappings still forward.
        await waitFor(() => Date.now() > firstExpiry + 1000, { timeoutMs: 10_000, intervalMs: 250 });
        expect((await knock(mediaPort, [mediaPort])).udp).toEqual([`udp ${mediaPort} ${home.ip}`]);

        mapper.send('close');
        const closed = await event(mapper, 'closed');
        expect(closed.state).toBe('closed');
        await mapper.next((m) => m.event === 'observer-close', 5000, 'observer close');
        expect(mine()).toEqual([]);
        expect(await knock(mediaPort, [mediaPort], 2000)).toEqual({ tcp: null, udp: [null] });
      } finally {
        await mapper.kill();
      }
    });
  }

  it('with miniupnpd stopped: says which ports to forward to which address, keeps trying, maps once it is back', async () => {
    await router.stopUpnp();
    const mediaPort = 44_000;
    const pipes = { min: 44_100, max: 44_109 };
    const mapper = nodeInNamespace(home.name, MAPPER, { ip: home.ip, mediaPort, pipes, leaseSeconds: 60, methods: ['upnp', 'nat-pmp'], retryMs: 1000 });
    try {
      const started = await event(mapper, 'started');
      expect(started.state).toBe('failed');
      expect(started.problem?.reason).toBe('no-answer');
      expect(started.message).toBe(
        `could not open this relay's ports on your router automatically (no UPnP or NAT-PMP answer from ${router.lanIp}; it may have them switched off). ` +
          `Forward these ports on your router to this computer (${home.ip}): UDP and TCP ${mediaPort} (media), UDP ${pipes.min}-${pipes.max} (pipes between relays). Trying again in 1 s.`,
      );
      const retried = await event(mapper, 'failed', 'a second attempt');
      expect(retried.failedAttempts).toBeGreaterThanOrEqual(2);
      await router.startUpnp();
      const mapped = await event(mapper, 'mapped', 'mapped once miniupnpd is back');
      expect(mapped).toMatchObject({ state: 'mapped', externalIp: router.wanIp, failedAttempts: 0 });
      mapper.send('close');
      await event(mapper, 'closed');
    } finally {
      await mapper.kill();
      if (!router.upnpRunning) await router.startUpnp();
    }
  });

  it('a router answering garbage (NAT-PMP and UPnP) never crashes the relay: a failed status in plain words', async () => {
    await router.stopUpnp();
    // In the router namespace: NAT-PMP answers of every wrong shape, an SSDP answer pointing at a
    // description whose control URL answers nonsense, and an endless description at a second location.
    const HOSTILE = `
      import dgram from 'node:dgram'; import http from 'node:http';
      const { lanIp } = JSON.parse(process.argv[1]);
      const pmp = dgram.createSocket('udp4');
      pmp.on('message', (m, r) => {
        for (const b of [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 128]), Buffer.from([0, 128 + (m[1] ?? 0), 0, 0]), Buffer.from([9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]), Buffer.alloc(3000, 0xff)])
          pmp.send(b, r.port, r.address);
      });
      pmp.bind(5351, lanIp);
      const web = http.createServer((req, res) => {
        if (req.url === '/endless.xml') { res.writeHead(200, { 'content-type': 'text/xml' }); const t = setInterval(() => res.write('<x>'.repeat(1000)), 5); res.on('close', () => clearInterval(t)); return; }
        if (req.method === 'GET') { res.writeHead(200, { 'content-type': 'text/xml' }); return res.end('<root><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl</controlURL></service></serviceList></device></root>'); }
        res.writeHead(200, { 'content-type': 'text/xml' }); res.end('<s:Envelope><s:Body><u:GetExternalIPAddressResponse><NewExternalIPAddress>999.1.2.3</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>');
      }).listen(0, lanIp, () => {
        const port = web.address().port;
        const ssdp = dgram.createSocket({ type: 'udp4', reuseAddr: true });
        ssdp.on('message', (m, r) => {
          for (const loc of ['/endless.xml', '/desc.xml'])
            ssdp.send('HTTP/1.1 200 OK\\r\\nST: x\\r\\nLOCATION: http://' + lanIp + ':' + port + loc + '\\r\\n\\r\\n', r.port, r.address);
          ssdp.send('FOO * HTTP/1.1\\r\\n\\r\\n', r.port, r.address);
          ssdp.send(Buffer.alloc(2000, 0), r.port, r.address);
        });
        ssdp.bind(1900, () => { ssdp.addMembership('239.255.255.250', lanIp); console.log(JSON.stringify({ ready: true })); });
      });`;
    const hostile = nodeInNamespace(router.name, HOSTILE, { lanIp: router.lanIp });
    const mapper = nodeInNamespace(home.name, MAPPER, { ip: home.ip, mediaPort: 45_000, pipes: { min: 45_100, max: 45_100 }, leaseSeconds: 60, methods: ['upnp', 'nat-pmp'], retryMs: 500, requestTimeoutMs: 8000 });
    try {
      await hostile.next((m) => m.ready === true, 20_000, 'hostile router ready');
      const started = await event(mapper, 'started');
      expect(started.state).toBe('failed');
      expect(started.problem?.reason).toBe('malformed');
      expect(started.message).toContain(`Forward these ports on your router to this computer (${home.ip}): UDP and TCP 45000 (media), UDP 45100 (pipes between relays)`);
      // It keeps going (and keeps failing) without dying.
      await event(mapper, 'failed', 'another attempt against the hostile router');
      await event(mapper, 'failed', 'and another');
      expect(mapper.proc.exitCode).toBeNull();
      mapper.send('close');
      await event(mapper, 'closed');
    } finally {
      await mapper.kill();
      await hostile.kill();
      await router.startUpnp();
    }
  });
});
