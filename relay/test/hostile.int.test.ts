import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TicketSigner, generateTicketKey } from '@cascade/controller';
import {
  RawClient,
  fakeSrtpParameters,
  openRawRelay,
  getJson,
  issueToken,
  startChromiumBroadcaster,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type TestBroadcaster,
} from '@cascade/testing';

/**
 * A live stream flows origin → relay → viewer while hostile clients and hostile relays throw
 * everything they can at the public endpoint, at the relay's sessions through the controller
 * and at the controller itself. Each bad input gets its coded error and a log line; the
 * stream, its tree and its viewer are untouched.
 */
let origin: NodeProcess;
let relay: NodeProcess & { nodeId: string };
let broadcaster: TestBroadcaster;
let viewer: NodeViewer;
const key = generateTicketKey();
const signer = new TicketSigner(key, 60);

interface TopoNode { id: string; parent: string | null; depth: number; viewers: number; children: number }
const topology = async () => (await getJson<{ nodes: TopoNode[] }>(`${origin.url}/api/streams/${broadcaster.streamId}/topology`)).body.nodes;
const shape = (nodes: TopoNode[]) => nodes.map((n) => `${n.id}<${n.parent ?? '-'}@${n.depth} v${n.viewers} c${n.children}`).sort();

beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cascade-key-'));
  const keyFile = path.join(dir, 'ticket.pem');
  writeFileSync(keyFile, key.privateKey);
  // The origin serves no viewer itself: the one viewer is the relay's.
  origin = await startServer({ env: { CASCADE_AUTH_TICKET_KEY_FILE: keyFile, CASCADE_ORIGIN_MAX_VIEWERS: '0' } });
  relay = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'honest' }), maxViewers: 5 });
  broadcaster = await startChromiumBroadcaster(origin.url);
  viewer = await startNodeViewer(origin.url, broadcaster.streamId);
}, 120_000);

afterAll(async () => {
  viewer?.stop();
  await broadcaster?.stop();
  await relay?.stop();
  await origin?.stop();
});

describe('hostile input while a stream flows through a relay', () => {
  let before: string[];

  it('sets up: the viewer is served by the relay and receives frames', async () => {
    expect(viewer.watch.nodeId).toBe(relay.nodeId);
    const start = viewer.counters.frames;
    await waitFor(() => viewer.counters.frames >= start + 20, { what: 'the viewer to receive 20 frames', timeoutMs: 30_000 });
    before = shape(await waitFor(async () => {
      const t = await topology();
      return t.length === 2 && t.every((n) => n.parent !== null || n.depth === 0) && t.find((n) => n.id === relay.nodeId)?.viewers === 1 ? t : undefined;
    }, { what: 'origin and relay in the topology, the relay with its viewer' }));
  });

  it("a hostile viewer's messages, carried to the relay through the controller, get coded errors from where they are checked", async () => {
    const c = await RawClient.open(origin.url);
    const sid = broadcaster.streamId;
    // The origin has no room: the controller places this session on the relay, through the public endpoint.
    const watch = await c.request('stream.watch', { streamId: sid });
    expect(watch, JSON.stringify(watch.error)).toMatchObject({ ok: true, data: { action: 'serve', nodeId: relay.nodeId } });
    // A second watch on one session is one viewer, not a stream of placements.
    expect(await c.request('stream.watch', { streamId: sid })).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER' } });
    c.send('{"v":1,"id":');
    expect(await c.reply(null)).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_MALFORMED' } });
    expect(await c.request('node.register', {})).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE' } });
    // These reach the relay, which answers them through the tunnel.
    expect(await c.request('consumer.resume', { consumerId: 'x' })).toMatchObject({ error: { code: 'CASCADE_ERR_MEDIA_CONSUMER_NOT_FOUND' } });
    expect(await c.request('transport.create', { direction: 'send' })).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' } });
    expect(await c.request('pipe.open', { ticket: signer.viewer({ stream: sid, node: relay.nodeId }), streamId: sid, ip: '127.0.0.1', port: 40999, srtpParameters: fakeSrtpParameters() })).toMatchObject({
      error: { code: 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER' },
    });
    expect(c.ws.readyState).toBe(1);
    c.send(JSON.stringify({ v: 1, id: 99, type: 'session.ping', data: { pad: 'x'.repeat(100_000) } }));
    expect(await c.closed).toEqual({ code: 4413, reason: 'CASCADE_ERR_PROTOCOL_TOO_LARGE' });
  });

  it('a registered hostile relay cannot touch the tree it is not part of', async () => {
    const token = issueToken({ scope: ['relay'], sub: 'mallory' });
    const sid = broadcaster.streamId;
    // Taking over the honest relay's id.
    const stolen = await openRawRelay(origin.url, { token, id: relay.nodeId, answerProbe: false });
    expect(stolen.reg).toMatchObject({ error: { code: 'CASCADE_ERR_RELAY_ALREADY_REGISTERED' } });
    stolen.close();
    // Registering under its own id, it claims to be fed by the origin and to feed the honest
    // relay: a parent vouching for a child it does not have.
    const originId = ((await getJson<{ node: string }>(`${origin.url}/healthz`)).body).node;
    const claim = [{ streamId: sid, parentNodeId: originId, depth: 1, viewers: 3, children: 1, childNodeIds: [relay.nodeId], bitrateOutKbps: 4500 }];
    const hostile = await openRawRelay(origin.url, { token, streams: claim });
    expect(hostile.reg.ok, JSON.stringify(hostile.reg.error)).toBe(true);
    const c = hostile.c;
    // Everything below names the live stream; none of it is the hostile relay's to say.
    const stats = { viewers: 3, children: 0, bitrateInKbps: 1500, bitrateOutKbps: 4500, lossRate: 0, cpu: 0.1, bytesOut: 1 };
    expect(await c.request('node.heartbeat', { stats, streams: claim })).toMatchObject({ ok: true });
    expect(await c.request('node.heartbeat', { stats: { ...stats, viewers: 1e6 }, streams: claim })).toMatchObject({ error: { code: 'CASCADE_ERR_RELAY_INVALID_STATS' } });
    // Departures: more than it declared it may serve are refused; the rest touch only its own count.
    expect(await c.request('viewer.left', { streamId: sid, count: 10_000 })).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' } });
    expect(await c.request('viewer.left', { streamId: sid, count: 11 })).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' } });
    expect(await c.request('viewer.left', { streamId: sid, count: 10 })).toMatchObject({ ok: true });
    expect(await c.request('stream.parentLost', { streamId: sid, parentNodeId: relay.nodeId })).toMatchObject({ ok: true });
    expect(await c.request('stream.released', { streamId: sid })).toMatchObject({ ok: true });
    expect(await c.request('stream.parentLost', { streamId: 'nosuchstream', parentNodeId: relay.nodeId })).toMatchObject({ ok: true });
    c.send('[]');
    expect(await c.reply(null)).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_MALFORMED' } });
    // Only an origin places viewers: a relay has no viewers of its own to place.
    expect(await c.request('viewer.place', { streamId: sid })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_FORBIDDEN' } });
    // Frames for sessions it does not hold (the honest relay's viewer's, or made up) are refused, one by one.
    c.send(JSON.stringify({ v: 1, type: 'tunnel.data', data: { id: 'aaaaaaaaaaaaaaaaaaaaaa', data: '{"v":1,"type":"stream.state","data":{"streamId":"x","state":"ended"}}' } }));
    await waitFor(() => c.notifications('tunnel.close').find((n) => (n.data as { id: string }).id === 'aaaaaaaaaaaaaaaaaaaaaa'), { what: 'the refusal of a foreign tunnel frame' });
    expect(c.notifications('tunnel.close').at(-1)).toMatchObject({ data: { reason: 'CASCADE_ERR_RELAY_UNKNOWN_SESSION' } });
    // A session it opens on the honest relay (as a child would) holds nothing it may not have: a
    // viewer's ticket pulls no stream.
    c.send(JSON.stringify({ v: 1, type: 'tunnel.open', data: { id: 'bbbbbbbbbbbbbbbbbbbbbb', to: relay.nodeId } }));
    const pull = { v: 1, id: 7, type: 'pipe.open', data: { ticket: signer.viewer({ stream: sid, node: relay.nodeId }), streamId: sid, ip: '127.0.0.1', port: 40999, srtpParameters: fakeSrtpParameters() } };
    c.send(JSON.stringify({ v: 1, type: 'tunnel.data', data: { id: 'bbbbbbbbbbbbbbbbbbbbbb', data: JSON.stringify(pull) } }));
    const answer = await waitFor(() => c.notifications('tunnel.data').find((n) => (n.data as { id: string }).id === 'bbbbbbbbbbbbbbbbbbbbbb'), { what: "the relay's answer through the tunnel" });
    expect(JSON.parse((answer.data as { data: string }).data)).toMatchObject({ id: 7, ok: false, error: { code: 'CASCADE_ERR_RELAY_NOT_ASSIGNED' } });
    // Two heartbeats of the honest relay later (what it reports changes each time: it is sending
    // media), the tree is exactly what it was: the relay keeps its viewer and its parent.
    const sent = async () => (await getJson<{ nodes: { id: string; stats: { bytesOut: number } | null }[] }>(`${origin.url}/api/nodes`)).body.nodes.find((n) => n.id === relay.nodeId)?.stats?.bytesOut ?? 0;
    let last = await sent();
    for (let beat = 0; beat < 2; beat++) {
      const seen = last;
      last = await waitFor(async () => {
        const b = await sent();
        return b > seen ? b : undefined;
      }, { what: "the honest relay's next heartbeat" });
    }
    expect(shape(await topology())).toEqual(before);
    hostile.close();
  });

  it('the stream kept flowing to its viewer, who never had to reconnect', async () => {
    const start = viewer.counters.frames;
    await waitFor(() => viewer.counters.frames >= start + 20, { what: 'the viewer to receive 20 more frames', timeoutMs: 30_000 });
    expect(viewer.counters.reconnects).toBe(0);
    expect(viewer.counters.ended).toBe(false);
    expect(viewer.counters.nodeIds.at(-1) ?? viewer.watch.nodeId).toBe(relay.nodeId);
    expect(viewer.counters.warnings).toEqual([]);
  });

  it('a relay that floods frames for sessions it does not hold is cut off; the honest relay keeps its viewer', async () => {
    const flooder = await openRawRelay(origin.url, { token: issueToken({ scope: ['relay'], sub: 'flooder' }) });
    expect(flooder.reg.ok, JSON.stringify(flooder.reg.error)).toBe(true);
    for (let i = 0; i < 60; i++) flooder.c.send(JSON.stringify({ v: 1, type: 'tunnel.data', data: { id: `flood${String(i).padStart(12, '0')}`, data: '{}' } }));
    expect(await flooder.c.closed).toMatchObject({ code: 4429, reason: 'CASCADE_ERR_PROTOCOL_RATE_LIMITED' });
    flooder.close();
  });

  it('each refusal is logged with its code, where it happened', () => {
    const relayLog = relay.logs.join('\n');
    for (const code of ['CASCADE_ERR_MEDIA_CONSUMER_NOT_FOUND', 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'CASCADE_ERR_RELAY_NOT_ASSIGNED']) {
      expect(relayLog, code).toContain(code);
    }
    const originLog = origin.logs.join('\n');
    for (const code of ['CASCADE_ERR_RELAY_ALREADY_REGISTERED', 'CASCADE_ERR_RELAY_INVALID_STATS', 'CASCADE_ERR_PROTOCOL_MALFORMED', 'CASCADE_ERR_PROTOCOL_TOO_LARGE', 'CASCADE_ERR_RELAY_UNKNOWN_SESSION']) {
      expect(originLog, code).toContain(code);
    }
    expect(`${relayLog}\n${originLog}`).not.toMatch(/eyJhbGciOi/);
  });
});
