import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  RawClient,
  issueToken,
  metric,
  startRelay,
  startServer,
  vp8RtpParameters,
  type NodeProcess,
} from '@cascade/testing';

/**
 * Connections have deadlines: a /ws client must send a request soon after connecting and must
 * hold something (a stream published, watched or pulled) soon after; HTTP requests must arrive
 * in time; one address holds a bounded number of connections. Short limits here, so that a test
 * waits seconds; every wait below is a generous ceiling, not a measurement.
 */
const PER_ADDRESS = 8;
const CEILING_MS = 20_000;
let origin: NodeProcess;

const limits = {
  CASCADE_SIGNALLING_FIRST_MESSAGE_TIMEOUT_MS: '1000',
  CASCADE_SIGNALLING_IDLE_TIMEOUT_MS: '2000',
  CASCADE_HTTP_HEADERS_TIMEOUT_MS: '1000',
  CASCADE_HTTP_REQUEST_TIMEOUT_MS: '2000',
};

beforeAll(async () => {
  origin = await startServer({
    env: {
      ...limits,
      CASCADE_HTTP_MAX_CONNECTIONS_PER_ADDRESS: String(PER_ADDRESS),
      // Loopback is exempt by default (a reverse proxy on the machine); here it is the attacker.
      CASCADE_HTTP_UNLIMITED_ADDRESSES: '[]',
    },
  });
});
afterAll(async () => {
  await origin?.stop();
});

/**
 * A raw TCP client that sends `data` (possibly an incomplete request) and reports what the server
 * answered and whether it closed the connection within `ms`.
 */
function rawTcp(port: number, data: string, ms = CEILING_MS, localAddress?: string): Promise<{ answer: string; closed: boolean }> {
  return new Promise((resolve) => {
    let answer = '';
    const s = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () => {
      if (data) s.write(data);
    });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ answer, closed: false });
    }, ms);
    s.on('data', (d) => (answer += d.toString()));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closed: true });
    });
  });
}

async function publisher(sub: string, localAddress?: string) {
  const c = await RawClient.open(origin.url, '/ws', undefined, localAddress ? { localAddress } : {});
  const pub = await c.request('stream.publish', { token: issueToken({ scope: ['broadcast'], sub }) });
  const t = await c.request('transport.create', { direction: 'send' });
  await c.request('producer.create', { transportId: t.data!.id, kind: 'video', rtpParameters: vp8RtpParameters() });
  return { c, streamId: pub.data!.streamId as string };
}

describe('/ws sessions', () => {
  it('a connection that sends nothing is closed with CASCADE_ERR_PROTOCOL_IDLE', async () => {
    const silent = await RawClient.open(origin.url);
    expect(await silent.closedWithin(CEILING_MS)).toEqual({ code: 4408, reason: 'CASCADE_ERR_PROTOCOL_IDLE' });
    expect(silent.messages[0]).toMatchObject({ ok: false, error: { code: 'CASCADE_ERR_PROTOCOL_IDLE' } });
    expect(await metric(origin.url, 'cascade_signal_timeouts_total')).toBeGreaterThanOrEqual(1);
  });

  it('a session that only pings is closed once idle; a broadcaster and a viewer are not', async () => {
    const pub = await publisher('holder');
    const viewer = await RawClient.open(origin.url);
    expect((await viewer.request('stream.watch', { streamId: pub.streamId })).ok).toBe(true);
    const pinger = await RawClient.open(origin.url);
    const timer = setInterval(() => pinger.send(JSON.stringify({ v: 1, id: 1, type: 'session.ping', data: {} })), 300);
    try {
      expect(await pinger.closedWithin(CEILING_MS)).toEqual({ code: 4408, reason: 'CASCADE_ERR_PROTOCOL_IDLE' });
    } finally {
      clearInterval(timer);
    }
    // They connected before the pinger and hold a stream: still served.
    for (const c of [pub.c, viewer]) {
      expect(c.ws.readyState).toBe(1);
      expect((await c.request('session.ping', {})).ok).toBe(true);
    }
    pub.c.close();
    viewer.close();
  });

  it('a session whose only request failed is closed once idle', async () => {
    const c = await RawClient.open(origin.url);
    expect(await c.request('stream.watch', { streamId: 'nosuchstream' })).toMatchObject({ error: { code: 'CASCADE_ERR_STREAM_NOT_FOUND' } });
    expect(await c.closedWithin(CEILING_MS)).toEqual({ code: 4408, reason: 'CASCADE_ERR_PROTOCOL_IDLE' });
  });
});

describe('HTTP', () => {
  it('a request whose headers never complete gets 408 and is disconnected', async () => {
    const partial = await rawTcp(origin.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    expect(partial.closed).toBe(true);
    expect(partial.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(partial.answer).toContain('CASCADE_ERR_HTTP_TIMEOUT');
    // A WebSocket handshake left half done, and a connection that says nothing at all, go the same way.
    const handshake = await rawTcp(origin.port, 'GET /ws?v=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n');
    expect(handshake).toMatchObject({ closed: true });
    expect(await rawTcp(origin.port, '')).toMatchObject({ closed: true });
    expect(await metric(origin.url, 'cascade_http_client_errors_total')).toBeGreaterThanOrEqual(3);
  });

  it('headers trickled a byte at a time (slowloris) are cut off as well', async () => {
    const request = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ' + 'a'.repeat(600);
    const result = await new Promise<{ closed: boolean; sent: number }>((resolve) => {
      let sent = 0;
      const s = net.connect({ port: origin.port, host: '127.0.0.1' });
      const timer = setInterval(() => {
        if (sent < request.length) s.write(request[sent++]!);
      }, 50);
      const ceiling = setTimeout(() => {
        s.destroy();
        resolve({ closed: false, sent });
      }, CEILING_MS);
      s.on('error', () => {});
      s.on('close', () => {
        clearInterval(timer);
        clearTimeout(ceiling);
        resolve({ closed: true, sent });
      });
    });
    expect(result.closed).toBe(true);
    // It was never idle, yet never got to finish its headers.
    expect(result.sent).toBeLessThan(request.length);
  });

  it(`one address holds at most ${PER_ADDRESS} connections; others are served meanwhile`, async () => {
    const bystander = await publisher('bystander', '127.0.0.2');
    // The attacker's connections hold a stream, so that no other deadline closes them.
    const held: RawClient[] = [];
    for (let i = 0; i < PER_ADDRESS; i++) {
      const c = await RawClient.open(origin.url, '/ws', undefined, { localAddress: '127.0.0.3' });
      expect((await c.request('stream.watch', { streamId: bystander.streamId })).ok).toBe(true);
      held.push(c);
    }
    const refused = await RawClient.open(origin.url, '/ws', undefined, { localAddress: '127.0.0.3' }).catch((e: { status?: number; body?: { code?: string } }) => e);
    expect(refused).toMatchObject({ status: 429, body: { code: 'CASCADE_ERR_HTTP_TOO_MANY_CONNECTIONS' } });
    const plain = await rawTcp(origin.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', CEILING_MS, '127.0.0.3');
    expect(plain.answer).toMatch(/^HTTP\/1\.1 429 /);
    // Another address is served, and the bystander's session was never touched.
    const other = await RawClient.open(origin.url, '/ws', undefined, { localAddress: '127.0.0.4' });
    expect((await other.request('stream.watch', { streamId: bystander.streamId })).ok).toBe(true);
    expect((await bystander.c.request('session.ping', {})).ok).toBe(true);
    // A place given back is a place available again.
    held.pop()!.close();
    const again = await waitForOpen('127.0.0.3');
    expect((await again.request('stream.watch', { streamId: bystander.streamId })).ok).toBe(true);
    expect(await metric(origin.url, 'cascade_http_connections_refused_total')).toBeGreaterThanOrEqual(2);
    for (const c of [...held, other, again, bystander.c]) c.close();
  });
});

/** Open a /ws connection from `localAddress` once the server has seen an earlier one close. */
function waitForOpen(localAddress: string): Promise<RawClient> {
  return vi.waitFor(() => RawClient.open(origin.url, '/ws', undefined, { localAddress }), { timeout: CEILING_MS, interval: 100 });
}

describe('a relay has the same deadlines', () => {
  let relay: NodeProcess & { nodeId: string };
  beforeAll(async () => {
    relay = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'deadlines' }), env: limits });
  });
  afterAll(async () => {
    await relay?.stop();
  });

  it('its status page has no WebSocket at all, and a half-sent request to it is closed', async () => {
    await expect(RawClient.open(relay.url)).rejects.toMatchObject({ status: 404, body: { code: 'CASCADE_ERR_HTTP_NOT_FOUND' } });
    const partial = await rawTcp(relay.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    expect(partial).toMatchObject({ closed: true });
    expect(partial.answer).toMatch(/^HTTP\/1\.1 408 /);
  });
});
