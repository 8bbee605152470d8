import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RawClient,
  getJson,
  issueToken,
  metric,
  openRawRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type RawRelay,
} from '@cascade/testing';

/**
 * What a development run exposes and what anyone may ask of it: where it listens, what the
 * public API reveals, how much an anonymous request or a refused message costs.
 */
const MAX_ENDED = 3;
let origin: NodeProcess;
const broadcastToken = (sub: string) => issueToken({ scope: ['broadcast'], sub });

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_ORIGIN_MAX_ENDED_STREAMS: String(MAX_ENDED), CASCADE_ORIGIN_RECONNECT_GRACE_MS: '1000' } });
});
afterAll(async () => {
  await origin?.stop();
});

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

describe('npm start', () => {
  it('listens on loopback only unless told otherwise, and says how to open it up', async () => {
    expect(await connects('127.0.0.1', origin.port)).toBe(true);
    // Any other address of this machine (127.0.0.2 is one on Linux) is not listened on.
    expect(await connects('127.0.0.2', origin.port)).toBe(false);
    const out = origin.logs.join('\n');
    expect(out).toContain('Listening on 127.0.0.1 only');
    expect(out).toContain('CASCADE_HTTP_HOST=0.0.0.0');
  });
});

describe('HTTP API', () => {
  it('a malformed %-escape is 400 CASCADE_ERR_HTTP_BAD_REQUEST, not an internal error', async () => {
    for (const path of ['/api/streams/%E0%A4%A', '/api/streams/%E0%A4%A/topology', '/watch/%E0%A4%A']) {
      const res = await getJson<{ code: string }>(`${origin.url}${path}`);
      expect(res.status, path).toBe(400);
      expect(res.body.code, path).toBe('CASCADE_ERR_HTTP_BAD_REQUEST');
    }
    expect(origin.logs.join('\n')).not.toContain('http request failed');
  });

  describe('/api/nodes', () => {
    let volunteer: RawRelay;
    let dedicated: RawRelay;
    beforeAll(async () => {
      volunteer = await openRawRelay(origin.url, { token: issueToken({ scope: ['relay'], sub: 'home', volunteer: true }), id: 'home-relay' });
      dedicated = await openRawRelay(origin.url, { token: issueToken({ scope: ['relay'], sub: 'dc' }), id: 'dc-relay' });
    });
    afterAll(() => {
      volunteer?.close();
      dedicated?.close();
    });

    it("does not publish a volunteer's address; dedicated nodes keep theirs", async () => {
      const nodes = (await getJson<{ nodes: { id: string; volunteer: boolean; url: string | null; mediaIp: string | null }[] }>(`${origin.url}/api/nodes`)).body.nodes;
      const byId = new Map(nodes.map((n) => [n.id, n]));
      expect(byId.get('home-relay')).toMatchObject({ volunteer: true, url: null, mediaIp: null });
      expect(byId.get('dc-relay')).toMatchObject({ volunteer: false, mediaIp: '127.0.0.1' });
    });
  });
});

describe('streams', () => {
  it(`ended streams are capped at origin.maxEndedStreams (${MAX_ENDED}), the newest kept`, async () => {
    const ended: string[] = [];
    for (let i = 0; i < MAX_ENDED + 3; i++) {
      const c = await RawClient.open(origin.url);
      const pub = await c.request('stream.publish', { token: broadcastToken('serial') });
      expect(pub.ok).toBe(true);
      expect((await c.request('stream.unpublish', {})).ok).toBe(true);
      ended.push(pub.data!.streamId as string);
      c.close();
    }
    const endedIds = async () =>
      (await getJson<{ streams: { id: string; state: string }[] }>(`${origin.url}/api/streams?all=1`)).body.streams
        .filter((s) => s.state === 'ended')
        .map((s) => s.id);
    await waitFor(async () => (await endedIds()).length === MAX_ENDED, { what: `${MAX_ENDED} ended streams left` });
    expect((await endedIds()).sort()).toEqual(ended.slice(-MAX_ENDED).sort());
    // A forgotten one is simply not found.
    expect((await getJson(`${origin.url}/api/streams/${ended[0]}`)).status).toBe(404);
  });

  it("a token without a stream claim cannot take someone else's id, live, reconnecting or ended", async () => {
    const alice = await RawClient.open(origin.url);
    expect((await alice.request('stream.publish', { token: broadcastToken('alice'), streamId: 'alices-show' })).ok).toBe(true);
    const tryBob = async () => {
      const bob = await RawClient.open(origin.url);
      const r = await bob.request('stream.publish', { token: broadcastToken('bob'), streamId: 'alices-show', resume: true });
      bob.close();
      return r;
    };
    expect(await tryBob()).toMatchObject({ error: { code: 'CASCADE_ERR_STREAM_ALREADY_LIVE' } });
    alice.close();
    await waitFor(async () => (await getJson<{ state: string }>(`${origin.url}/api/streams/alices-show`)).body.state === 'reconnecting', { what: 'reconnecting' });
    expect(await tryBob()).toMatchObject({ error: { code: 'CASCADE_ERR_STREAM_ALREADY_LIVE' } });
    await waitFor(async () => (await getJson<{ state: string }>(`${origin.url}/api/streams/alices-show`)).body.state === 'ended', { what: 'ended' });
    expect(await tryBob()).toMatchObject({ error: { code: 'CASCADE_ERR_STREAM_ALREADY_LIVE' } });
    // Its owner may use it again.
    const again = await RawClient.open(origin.url);
    expect((await again.request('stream.publish', { token: broadcastToken('alice'), streamId: 'alices-show' })).ok).toBe(true);
    again.close();
  });
});

describe('refused messages', () => {
  it('are all counted but only a few logged', async () => {
    const before = await metric(origin.url, 'cascade_signal_errors_total');
    const logLines = () => origin.logs.filter((l) => l.includes('"bad message"') || l.includes('"request refused"')).length;
    const linesBefore = logLines();
    const c = await RawClient.open(origin.url);
    // Within the rate limit (50/s, burst 100): each one gets its coded reply.
    const replies = await c.burst('stream.explode', {}, 80);
    expect(replies.every((r) => r.error?.code === 'CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE')).toBe(true);
    await waitFor(async () => (await metric(origin.url, 'cascade_signal_errors_total')) >= (Number.isNaN(before) ? 0 : before) + 80, {
      what: 'every refusal counted',
    });
    // The default budget is 5 lines a second with a burst of 20: far fewer lines than refusals.
    expect(logLines() - linesBefore).toBeLessThanOrEqual(30);
    c.close();
  });
});
