import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DOCUMENTATION_SUBNETS,
  canCreateNamespaces,
  createTestNetwork,
  freePort,
  startServer,
  startTlsProxy,
  type NodeProcess,
  type TestNetwork,
  type TlsProxy,
} from '@cascade/testing';

/**
 * The TLS reverse proxy harness (testing/src/tlsProxy.ts): Debian's nginx with a certificate made
 * at test time in front of a real Cascade origin, serving /healthz and the WebSocket upgrade of
 * /ws?v=1, on loopback and, as deployed, on a public-looking address from another namespace.
 */
function httpsGet(url: string, ca?: Buffer): Promise<{ status: number; body: string; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...(ca ? { ca } : { rejectUnauthorized: false }) }, (res) => {
      const authorized = (res.socket as import('node:tls').TLSSocket).authorized;
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, authorized }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Open wss://…/ws?v=1 through the proxy and make one request (an unknown stream: a coded error reply). */
async function watchUnknownStream(base: string): Promise<Record<string, unknown>> {
  const ws = new WebSocket(`${base.replace(/^https/, 'wss')}/ws?v=1`, { rejectUnauthorized: false });
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    const reply = new Promise<Record<string, unknown>>((resolve) => ws.on('message', (d) => resolve(JSON.parse(d.toString()) as Record<string, unknown>)));
    ws.send(JSON.stringify({ v: 1, id: 7, type: 'stream.watch', data: { streamId: 'no-such-stream' } }));
    return await reply;
  } finally {
    ws.close();
  }
}

describe('TLS reverse proxy (nginx) in front of a Cascade origin', () => {
  let origin: NodeProcess;
  let proxy: TlsProxy;

  beforeAll(async () => {
    origin = await startServer();
    proxy = await startTlsProxy({ upstream: origin.url });
  });

  afterAll(async () => {
    await proxy?.stop();
    await origin?.stop();
  });

  it('serves the origin /healthz over https, with the certificate made for it', async () => {
    expect(proxy.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await httpsGet(`${proxy.url}/healthz`, readFileSync(proxy.certPath));
    expect(r.authorized).toBe(true);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ status: 'ok' });
  });

  it('upgrades /ws?v=1 to a WebSocket and carries signalling both ways', async () => {
    const reply = await watchUnknownStream(proxy.url);
    expect(reply).toMatchObject({ id: 7, ok: false, error: { code: 'CASCADE_ERR_STREAM_NOT_FOUND' } });
  });

  it('stop() is idempotent and the port closes', async () => {
    const p = await startTlsProxy({ upstream: origin.url });
    await p.stop();
    await p.stop();
    await expect(httpsGet(`${p.url}/healthz`)).rejects.toThrow();
  });
});

const support = await canCreateNamespaces();
if (!support.ok) console.warn(`[tlsProxy.int.test] SKIPPED (public-looking address part): ${support.reason}`);

describe.skipIf(!support.ok)('TLS reverse proxy on a public-looking address, reached from another namespace', () => {
  let net: TestNetwork;
  let origin: NodeProcess;
  let proxy: TlsProxy;

  beforeAll(async () => {
    net = await createTestNetwork({ count: 1, subnet: DOCUMENTATION_SUBNETS });
    const port = await freePort();
    origin = await startServer({ port, host: net.rootIp, env: { CASCADE_HTTP_PUBLIC_URL: `http://${net.rootIp}:${port}` } });
    // nginx in the namespace, the origin in the root: as a proxy host in front of an app host.
    proxy = await startTlsProxy({ upstream: origin.url, netns: net.namespaces[0]!.name, host: net.namespaces[0]!.ip, port: 8443 });
  });

  afterAll(async () => {
    await proxy?.stop();
    await origin?.stop();
    await net?.cleanup();
  });

  it('serves /healthz and /ws?v=1 at https://<documentation-range address>:8443', async () => {
    expect(proxy.url).toBe(`https://${net.namespaces[0]!.ip}:8443`);
    // From the root namespace, across the test network (a viewer's side), to nginx in its namespace.
    const r = await httpsGet(`${proxy.url}/healthz`, readFileSync(proxy.certPath));
    expect(r.authorized).toBe(true);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ status: 'ok' });
    expect(await watchUnknownStream(proxy.url)).toMatchObject({ id: 7, ok: false, error: { code: 'CASCADE_ERR_STREAM_NOT_FOUND' } });
  });
});
