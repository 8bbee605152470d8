import { setTimeout as delay } from 'node:timers/promises';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TicketSigner, generateTicketKey } from '@cascade/controller';
import {
  RawClient,
  fakeSrtpParameters,
  openRawRelay,
  TEST_SECRET,
  issueToken,
  metric,
  startServer,
  vp8RtpParameters,
  waitFor,
  type NodeProcess,
} from '@cascade/testing';

/**
 * Untrusted relays against the controller's /control API and the origin's pipe endpoint:
 * bad tokens, double registration, impossible heartbeats, unassigned pulls, unreachable
 * media. Each gets its coded error and nothing else is disturbed.
 */
let origin: NodeProcess;
const key = generateTicketKey();
const signer = new TicketSigner(key, 60);
const capacity = { maxViewers: 10, maxChildren: 2, upKbps: 10_000, downKbps: 10_000 };
const relayToken = (sub: string, extra: Record<string, unknown> = {}) => issueToken({ scope: ['relay'], sub, ...extra });

const rawRelay = (sub: string, opts: { id?: string; answerProbe?: boolean } = {}) => openRawRelay(origin.url, { token: relayToken(sub), capacity, ...opts });
/** A well-formed announcement for raw node.register calls (nobody answers its checks). */
const announcement = { mediaIp: '127.0.0.1', mediaPort: 9, probe: { ufrag: 'abcdefgh', pwd: 'p'.repeat(24) }, probePort: 9, capacity };

beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cascade-key-'));
  const keyFile = path.join(dir, 'ticket.pem');
  writeFileSync(keyFile, key.privateKey);
  origin = await startServer({ env: { CASCADE_AUTH_TICKET_KEY_FILE: keyFile, CASCADE_TOPOLOGY_PROBE_TIMEOUT_MS: '600', CASCADE_TOPOLOGY_REGISTER_TIMEOUT_MS: '1500' } });
});
afterAll(async () => {
  await origin?.stop();
});

describe('relay registration', () => {
  it('bad, expired and wrongly scoped relay tokens are refused', async () => {
    const c = await RawClient.open(origin.url, '/control');
    const node = announcement;
    expect(await c.request('node.register', { token: 'garbage', node, streams: [] })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_INVALID_TOKEN' } });
    const expired = jwt.sign({ scope: ['relay'], sub: 'x', exp: Math.floor(Date.now() / 1000) - 5 }, TEST_SECRET);
    expect(await c.request('node.register', { token: expired, node, streams: [] })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_EXPIRED_TOKEN' } });
    const broadcastOnly = issueToken({ scope: ['broadcast'], sub: 'x' });
    expect(await c.request('node.register', { token: broadcastOnly, node, streams: [] })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_FORBIDDEN' } });
    c.close();
  });

  it('requests before registration are refused with RELAY_NOT_REGISTERED', async () => {
    const c = await RawClient.open(origin.url, '/control');
    expect(await c.request('viewer.place', { streamId: 'abcdef' })).toMatchObject({ error: { code: 'CASCADE_ERR_RELAY_NOT_REGISTERED' } });
    c.close();
  });

  it('registering twice on one connection, or under another relay\'s id, is refused', async () => {
    const a = await rawRelay('alice', { id: 'relay-alice' });
    expect(a.reg.ok).toBe(true);
    expect(await a.c.request('node.register', { token: relayToken('alice'), node: announcement, streams: [] })).toMatchObject({
      error: { code: 'CASCADE_ERR_RELAY_ALREADY_REGISTERED' },
    });
    const m = await rawRelay('mallory', { id: 'relay-alice', answerProbe: false });
    expect(m.reg).toMatchObject({ error: { code: 'CASCADE_ERR_RELAY_ALREADY_REGISTERED' } });
    m.close();
    // The genuine relay is still there and ready.
    const nodes = (await (await fetch(`${origin.url}/api/nodes`)).json()) as { nodes: { id: string; status: string }[] };
    expect(nodes.nodes.find((n) => n.id === 'relay-alice')?.status).toBe('ready');
    a.close();
  });

  it('a relay whose media address does not answer the probe is closed with 4400 RELAY_UNREACHABLE', async () => {
    const r = await rawRelay('bob', { answerProbe: false });
    expect(r.reg.ok).toBe(true);
    expect(await r.c.closed).toEqual({ code: 4400, reason: 'CASCADE_ERR_RELAY_UNREACHABLE' });
    r.close();
  });

  it('heartbeats with impossible figures are refused; the relay stays registered', async () => {
    const r = await rawRelay('carol');
    const stats = { viewers: 0, children: 0, bitrateInKbps: 0, bitrateOutKbps: 0, lossRate: 0, cpu: 0.1, bytesOut: 0 };
    expect(await r.c.request('node.heartbeat', { stats, streams: [] })).toMatchObject({ ok: true });
    expect(await r.c.request('node.heartbeat', { stats: { ...stats, viewers: 5000 }, streams: [] })).toMatchObject({
      error: { code: 'CASCADE_ERR_RELAY_INVALID_STATS' },
    });
    expect(await r.c.request('node.heartbeat', { stats: { ...stats, lossRate: 3 }, streams: [] })).toMatchObject({
      error: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' },
    });
    expect(await r.c.request('node.heartbeat', { stats: { ...stats, bitrateOutKbps: 1e7 }, streams: [] })).toMatchObject({
      error: { code: 'CASCADE_ERR_RELAY_INVALID_STATS' },
    });
    expect(await r.c.request('node.heartbeat', { stats, streams: [] })).toMatchObject({ ok: true });
    r.close();
  });

  it('viewer.left with more departures than a message may carry, or than the relay may serve, is refused with PROTOCOL_INVALID_PARAMS', async () => {
    const r = await rawRelay('erin'); // declares 10 viewers
    const left = (count: number) => r.c.request('viewer.left', { streamId: 'somestream', count });
    // Each departure is a store write: a count is not an invitation to loop 10,000 times.
    expect(await left(10_000)).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' } });
    expect(await left(11)).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' } });
    expect(await left(0)).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' } });
    expect(await left(10)).toMatchObject({ ok: true });
    // Refused, not punished: the relay is still registered and heard.
    const stats = { viewers: 0, children: 0, bitrateInKbps: 0, bitrateOutKbps: 0, lossRate: 0, cpu: 0.1, bytesOut: 0 };
    expect(await r.c.request('node.heartbeat', { stats, streams: [] })).toMatchObject({ ok: true });
    expect(origin.logs.some((l) => l.includes('viewer departures refused'))).toBe(true);
    r.close();
  });
});

describe('a relay is one relay, honest about what it has', () => {
  it('a declaration no real relay makes is refused: no upload, more than any link, more viewers than its upload carries', async () => {
    for (const [bad, what] of [
      [{ ...capacity, upKbps: 0 }, 'no upload'],
      [{ ...capacity, upKbps: 50_000_000 }, 'more than any link'],
      [{ ...capacity, maxViewers: 100_000, upKbps: 1000 }, 'more viewers than its upload carries'],
    ] as const) {
      const r = await openRawRelay(origin.url, { token: relayToken(`liar${what.length}`), capacity: bad, answerProbe: false });
      expect(r.reg, what).toMatchObject({ error: { code: 'CASCADE_ERR_RELAY_INVALID_CAPACITY' } });
      r.close();
    }
  });

  it('one token runs one relay: a second registration under another id is refused while the first lives', async () => {
    const token = relayToken('twin');
    const first = await openRawRelay(origin.url, { token, capacity, id: 'twin-a' });
    expect(first.reg.ok).toBe(true);
    const second = await openRawRelay(origin.url, { token, capacity, id: 'twin-b', answerProbe: false });
    expect(second.reg).toMatchObject({ error: { code: 'CASCADE_ERR_RELAY_ALREADY_REGISTERED' } });
    second.close();
    first.close();
  });

  it('a relay the controller drained is still draining when it connects again: reconnecting is no way back in', async () => {
    const token = relayToken('leaver');
    const a = await openRawRelay(origin.url, { token, capacity, id: 'leaver-1' });
    expect(await a.c.request('node.drain', {})).toMatchObject({ ok: true });
    a.c.ws.terminate();
    // It comes back at once, as a relay whose connection dropped does, before it was forgotten.
    const b = await openRawRelay(origin.url, { token, capacity, id: 'leaver-1' });
    const status = async () => ((await (await fetch(`${origin.url}/api/nodes`)).json()) as { nodes: { id: string; status: string }[] }).nodes.find((n) => n.id === 'leaver-1')?.status;
    expect(await status()).toBe('draining');
    b.close();
  });

  it('a connection that never registers is closed', async () => {
    const c = await RawClient.open(origin.url, '/control');
    expect(await c.closed).toMatchObject({ reason: 'CASCADE_ERR_RELAY_NOT_REGISTERED' });
  });
});

describe('pulling streams', () => {
  let streamId: string;
  let publisher: RawClient;
  let nodeId: string;

  beforeAll(async () => {
    publisher = await RawClient.open(origin.url);
    const pub = await publisher.request('stream.publish', { token: issueToken({ scope: ['broadcast'], sub: 'dan' }) });
    streamId = pub.data!.streamId as string;
    const t = await publisher.request('transport.create', { direction: 'send' });
    await publisher.request('producer.create', { transportId: t.data!.id, kind: 'video', rtpParameters: vp8RtpParameters() });
    nodeId = ((await (await fetch(`${origin.url}/healthz`)).json()) as { node: string }).node;
  });
  afterAll(() => publisher?.close());

  const pipeOpen = (c: RawClient, ticket: string, ip = '127.0.0.1', sid = streamId) =>
    c.request('pipe.open', { ticket, streamId: sid, ip, port: 40999, srtpParameters: fakeSrtpParameters() });

  it('a relay without a valid pipe ticket cannot pull a stream', async () => {
    const c = await RawClient.open(origin.url);
    expect(await pipeOpen(c, 'forged.ticket.here')).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_INVALID_TOKEN' } });
    const foreign = new TicketSigner(generateTicketKey(), 60).pipe({ stream: streamId, node: nodeId, child: 'x', childIp: '127.0.0.1' });
    expect(await pipeOpen(c, foreign)).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_INVALID_TOKEN' } });
    const viewerTicket = signer.viewer({ stream: streamId, node: nodeId });
    expect(await pipeOpen(c, viewerTicket)).toMatchObject({ error: { code: 'CASCADE_ERR_RELAY_NOT_ASSIGNED' } });
    const otherStream = signer.pipe({ stream: 'otherstream', node: nodeId, child: 'x', childIp: '127.0.0.1' });
    expect(await pipeOpen(c, otherStream)).toMatchObject({ error: { code: 'CASCADE_ERR_RELAY_NOT_ASSIGNED' } });
    const otherNode = signer.pipe({ stream: streamId, node: 'some-other-node', child: 'x', childIp: '127.0.0.1' });
    expect(await pipeOpen(c, otherNode)).toMatchObject({ error: { code: 'CASCADE_ERR_NODE_WRONG_NODE' } });
    c.close();
  });

  it('a relay cannot aim a pipe at an address other than the one probed', async () => {
    const c = await RawClient.open(origin.url);
    const ticket = signer.pipe({ stream: streamId, node: nodeId, child: 'x', childIp: '127.0.0.1' });
    expect(await pipeOpen(c, ticket, '198.51.100.7')).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_FORBIDDEN' } });
    c.close();
  });

  it('with a valid ticket the pipe opens and carries the stream\'s producers; the ticket opens one pipe only', async () => {
    const c = await RawClient.open(origin.url);
    const ticket = signer.pipe({ stream: streamId, node: nodeId, child: 'x', childIp: '127.0.0.1' });
    const res = await pipeOpen(c, ticket);
    expect(res, JSON.stringify(res.error)).toMatchObject({ ok: true, data: { depth: 1, state: "live" } });
    expect((res.data!.producers as unknown[]).length).toBe(1);
    const again = await RawClient.open(origin.url);
    expect(await pipeOpen(again, ticket)).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_INVALID_TOKEN', message: expect.stringContaining('already used') } });
    again.close();
    c.close();
  });

  it('a child that vanishes in the middle of pipe.open leaves no pipe and no child counted', async () => {
    const children = async () => metric(origin.url, 'cascade_node_children');
    const transports = async () => metric(origin.url, 'cascade_media_transports');
    await waitFor(async () => ((await children()) === 0 ? true : undefined), { what: 'earlier pipes to close' });
    const baseline = await transports();
    // The moment the socket is cut varies with scheduling; several tries land it at different steps.
    for (let i = 0; i < 8; i++) {
      const c = await RawClient.open(origin.url);
      const ticket = signer.pipe({ stream: streamId, node: nodeId, child: `gone${i}`, childIp: '127.0.0.1' });
      c.send(JSON.stringify({ v: 1, id: 1, type: 'pipe.open', data: { ticket, streamId, ip: '127.0.0.1', port: 40999, srtpParameters: fakeSrtpParameters() } }));
      if (i % 2) await delay(i);
      c.ws.terminate();
    }
    await waitFor(async () => ((await transports()) === baseline ? true : undefined), { what: 'every pipe transport closed' });
    await waitFor(async () => ((await children()) === 0 ? true : undefined), { what: 'no child left counted on the origin' });
  });
});

describe('where the operator allows only public addresses (production), a relay announces the one it connects from', () => {
  let strict: NodeProcess;
  beforeAll(async () => {
    strict = await startServer({ env: { CASCADE_TOPOLOGY_RELAY_ADDRESSES: 'public' } });
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it('a private, a foreign or a named address is refused with RELAY_ADDRESS, before any probe is sent', async () => {
    for (const mediaIp of ['127.0.0.1', '203.0.113.5', 'relay.example.org']) {
      const r = await openRawRelay(strict.url, { token: relayToken(`addr${mediaIp.length}`), capacity, mediaIp, answerProbe: false });
      expect(r.reg, mediaIp).toMatchObject({ error: { code: 'CASCADE_ERR_RELAY_ADDRESS' } });
      r.close();
    }
    expect(strict.logs.some((l) => l.includes('CASCADE_ERR_RELAY_ADDRESS'))).toBe(true);
  });
});
