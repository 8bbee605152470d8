import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  RawClient,
  settled,
  fakeDtlsParameters,
  getJson,
  issueToken,
  startRedis,
  startServer,
  vp8RtpParameters,
  waitFor,
  type NodeProcess,
  type RawReply,
  type RedisServer,
} from '@cascade/testing';
import { metric } from './metrics.js';

/**
 * Limits that are checked and then awaited can be walked around by sending a burst of requests
 * before the first answer: each one passes the check. Every per-session and per-origin limit is
 * reserved before the first await and given back on failure; each burst here counts what it got,
 * against a real origin and mediasoup worker. The store is Redis: its round trips are the awaits
 * a burst slips through (an in-process store answers within the same turn).
 */
const MAX_STREAMS = 6;
const PER_OWNER = 2;
let origin: NodeProcess;
let redis: RedisServer;
const token = (sub: string) => issueToken({ scope: ['broadcast'], sub });
const codes = (replies: RawReply[]) => replies.map((r) => (r.ok ? 'ok' : r.error!.code));
const count = (replies: RawReply[], what: string) => codes(replies).filter((c) => c === what).length;
const liveStreams = async () =>
  (await getJson<{ streams: { id: string; state: string }[] }>(`${origin.url}/api/streams`)).body.streams;
const nodeStreams = () => metric(origin.url, 'cascade_node_streams');
const transports = () => metric(origin.url, 'cascade_media_transports');

/** A broadcaster with a real (unfed) VP8 producer: its stream is live for the whole file. */
let bystander: { c: RawClient; streamId: string };
let baseline: { transports: number; consumers: number };

beforeAll(async () => {
  redis = await startRedis();
  origin = await startServer({
    env: {
      CASCADE_REDIS_URL: redis.url,
      CASCADE_ORIGIN_MAX_STREAMS: String(MAX_STREAMS),
      CASCADE_ORIGIN_MAX_STREAMS_PER_OWNER: String(PER_OWNER),
      CASCADE_ORIGIN_RECONNECT_GRACE_MS: '1000',
    },
  });
  const c = await RawClient.open(origin.url);
  const pub = await c.request('stream.publish', { token: token('bystander') });
  const t = await c.request('transport.create', { direction: 'send' });
  expect((await c.request('producer.create', { transportId: t.data!.id, kind: 'video', rtpParameters: vp8RtpParameters() })).ok).toBe(true);
  bystander = { c, streamId: pub.data!.streamId as string };
  // Stream integrity opens the stream's digest tap and channel within its first batch period.
  baseline = await settled(async () => ({ transports: await transports(), consumers: await metric(origin.url, 'cascade_media_consumers') }), { what: "the bystander's media objects" });
});
afterAll(async () => {
  await origin?.stop();
  await redis?.stop();
});

/** Clients a test opened: closed after it, whether it passed or not, so that a failure does not cascade. */
const opened: RawClient[] = [];
async function client(): Promise<RawClient> {
  const c = await RawClient.open(origin.url);
  opened.push(c);
  return c;
}
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

/** Wait until every stream but the bystander's has ended and is gone from this origin (closed sessions, grace over). */
async function settle(): Promise<void> {
  await waitFor(async () => (await nodeStreams()) === 1 && (await liveStreams()).length === 1, { what: 'only the bystander stream left', timeoutMs: 30_000 });
  await waitFor(async () => (await transports()) === baseline.transports, { what: 'transports back to the bystander ones', timeoutMs: 30_000 });
}

describe('stream.publish', () => {
  // Each test starts from the bystander alone, even if the one before failed half-way.
  beforeEach(settle);
  it('a burst of publishes on one session makes one stream, and none is left behind once it closes', async () => {
    const c = await client();
    const replies = await c.burst('stream.publish', { token: token('burst') }, 10);
    expect(codes(replies).sort()).toEqual(['ok', ...Array(9).fill('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER')].sort());
    expect(await nodeStreams()).toBe(2);
    c.close();
    // The one stream waits for its broadcaster for the grace period, then ends: nothing stays in "waiting".
    await settle();
  });

  it('two owners publishing one id at once: exactly one gets it, the other is refused', async () => {
    for (const [i, id] of ['race-one', 'race-two', 'race-three'].entries()) {
      const a = await client();
      const b = await client();
      try {
        // New owners each round: the streams of the previous rounds are still in their grace period.
        const [ra, rb] = await Promise.all([
          a.request('stream.publish', { token: token(`alice${i}`), streamId: id }),
          b.request('stream.publish', { token: token(`bob${i}`), streamId: id }),
        ]);
        expect(codes([ra!, rb!]).sort()).toEqual(['CASCADE_ERR_STREAM_ALREADY_LIVE', 'ok']);
        const winner = ra!.ok ? a : b;
        // The winner's stream works: its transport is on the stream that exists.
        expect((await winner.request('transport.create', { direction: 'send' })).ok).toBe(true);
      } finally {
        a.close();
        b.close();
      }
    }
  });

  it("requests sent with a refused publish of someone else's stream cannot act as its broadcaster", async () => {
    const c = await client();
    const replies = await c.burstOf([
      ['stream.publish', { token: token('mallory'), streamId: bystander.streamId, resume: true }],
      ['stream.unpublish', {}],
      ['transport.create', { direction: 'send' }],
      ['stream.watch', { streamId: bystander.streamId }],
    ]);
    expect(codes(replies)).toEqual([
      'CASCADE_ERR_STREAM_ALREADY_LIVE',
      'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER',
      'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER',
      'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER',
    ]);
    expect((await liveStreams()).find((s) => s.id === bystander.streamId)?.state).toBe('live');
    expect(bystander.c.ws.readyState).toBe(1);
    c.close();
  });

  it('a burst of publishes by one owner on many sessions stops at origin.maxStreamsPerOwner', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => client()));
    const replies = await Promise.all(clients.map((c) => c.request('stream.publish', { token: token('carol') })));
    expect(count(replies, 'ok')).toBe(PER_OWNER);
    expect(count(replies, 'CASCADE_ERR_STREAM_OWNER_LIMIT')).toBe(8 - PER_OWNER);
    // Another owner is not affected by carol's limit.
    const other = await client();
    expect((await other.request('stream.publish', { token: token('dave') })).ok).toBe(true);
    for (const c of [...clients, other]) c.close();
    await settle();
  });

  it('a burst of publishes by many owners stops at origin.maxStreams', async () => {
    const clients = await Promise.all(Array.from({ length: 12 }, () => client()));
    const replies = await Promise.all(clients.map((c, i) => c.request('stream.publish', { token: token(`owner${i}`) })));
    // The bystander holds one of the places.
    expect(count(replies, 'ok')).toBe(MAX_STREAMS - 1);
    expect(count(replies, 'CASCADE_ERR_NODE_CAPACITY')).toBe(12 - (MAX_STREAMS - 1));
    expect(await nodeStreams()).toBe(MAX_STREAMS);
    for (const c of clients) c.close();
    await settle();
  });
});

describe('transport.create', () => {
  it('a burst of 30 on a viewer session creates at most 2 transports, and closing frees them', async () => {
    const c = await client();
    expect((await c.request('stream.watch', { streamId: bystander.streamId })).ok).toBe(true);
    const replies = await c.burst('transport.create', { direction: 'recv' }, 30);
    expect(count(replies, 'ok')).toBe(2);
    expect(count(replies, 'CASCADE_ERR_MEDIA_LIMIT')).toBe(28);
    expect(await transports()).toBe(baseline.transports + 2);
    c.close();
    await waitFor(async () => (await transports()) === baseline.transports, { what: 'the viewer transports closed' });
  });

  it('a burst of 30 on a publisher session creates at most 2 transports', async () => {
    const c = await client();
    expect((await c.request('stream.publish', { token: token('eve') })).ok).toBe(true);
    const replies = await c.burst('transport.create', { direction: 'send' }, 30);
    expect(count(replies, 'ok')).toBe(2);
    expect(await transports()).toBe(baseline.transports + 2);
    c.close();
    await settle();
  });
});

describe('transport.connect', () => {
  it('a burst of connects connects once; a connect the worker refused can be retried', async () => {
    const c = await client();
    await c.request('stream.watch', { streamId: bystander.streamId });
    const t1 = await c.request('transport.create', { direction: 'recv' });
    const burst = await c.burst('transport.connect', { transportId: t1.data!.id, dtlsParameters: fakeDtlsParameters() }, 10);
    expect(count(burst, 'ok')).toBe(1);
    expect(count(burst, 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER')).toBe(9);

    const t2 = await c.request('transport.create', { direction: 'recv' });
    // Valid by the schema, refused by the worker.
    const bad = { role: 'client', fingerprints: [{ algorithm: 'sha-999', value: 'AB' }] };
    expect(await c.request('transport.connect', { transportId: t2.data!.id, dtlsParameters: bad })).toMatchObject({
      ok: false,
      error: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' },
    });
    expect(await c.request('transport.connect', { transportId: t2.data!.id, dtlsParameters: fakeDtlsParameters() })).toMatchObject({ ok: true });
    c.close();
  });
});

describe('stream.subscribe', () => {
  const H264_ONLY = { codecs: [{ kind: 'video', mimeType: 'video/H264', clockRate: 90000, preferredPayloadType: 102, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' }, rtcpFeedback: [] }], headerExtensions: [] };
  const VP8_ONLY = { codecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000, preferredPayloadType: 96, rtcpFeedback: [] }], headerExtensions: [] };

  it('a subscribe that consumed nothing can be retried; a burst subscribes once', async () => {
    const c = await client();
    await c.request('stream.watch', { streamId: bystander.streamId });
    const t = await c.request('transport.create', { direction: 'recv' });
    expect(await c.request('stream.subscribe', { transportId: t.data!.id, rtpCapabilities: H264_ONLY })).toMatchObject({
      ok: false,
      error: { code: 'CASCADE_ERR_MEDIA_CANNOT_CONSUME' },
    });
    const burst = await c.burst('stream.subscribe', { transportId: t.data!.id, rtpCapabilities: VP8_ONLY }, 10);
    expect(count(burst, 'ok')).toBe(1);
    expect(count(burst, 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER')).toBe(9);
    expect((burst.find((r) => r.ok)!.data as { consumers: unknown[] }).consumers).toHaveLength(1);
    expect(await metric(origin.url, 'cascade_media_consumers')).toBe(baseline.consumers + 1);
    c.close();
    await waitFor(async () => (await metric(origin.url, 'cascade_media_consumers')) === baseline.consumers, { what: 'the consumer closed' });
  });
});

describe('a source replaced while a viewer subscribes', () => {
  const VP8_ONLY = { codecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000, preferredPayloadType: 96, rtcpFeedback: [] }], headerExtensions: [] };

  // The broadcaster's new video producer (on a second send transport) replaces the stream's
  // source while the viewer's subscribe is on its way, at a few offsets: whatever the order, the
  // viewer ends with one video consumer, of the new source (its old one closed). Traced at a relay
  // changing parents: viewers arriving then kept a consumer of the old source only and had no
  // video at all once it closed.
  it.each([0, 1, 3, 6, 12])('the viewer ends with a consumer of the new source (replaced %i ms after the subscribe)', async (delayMs) => {
    const b = await client();
    const pub = await b.request('stream.publish', { token: token(`replace-${delayMs}`) });
    const t1 = await b.request('transport.create', { direction: 'send' });
    expect((await b.request('producer.create', { transportId: t1.data!.id, kind: 'video', rtpParameters: vp8RtpParameters() })).ok).toBe(true);
    const t2 = await b.request('transport.create', { direction: 'send' });
    const v = await client();
    const announced: string[] = [];
    const closed = new Set<string>();
    v.onNotification<{ id: string; kind: string }>('consumer.new', (c) => c.kind === 'video' && announced.push(c.id));
    v.onNotification<{ consumerId: string }>('consumer.closed', ({ consumerId }) => closed.add(consumerId));
    expect((await v.request('stream.watch', { streamId: pub.data!.streamId })).ok).toBe(true);
    const t = await v.request('transport.create', { direction: 'recv' });
    const subscribed = v.request('stream.subscribe', { transportId: t.data!.id, rtpCapabilities: VP8_ONLY });
    await new Promise((r) => setTimeout(r, delayMs));
    const replaced = await b.request('producer.create', { transportId: t2.data!.id, kind: 'video', rtpParameters: vp8RtpParameters() });
    expect(replaced.ok).toBe(true);
    const sub = await subscribed;
    expect(sub.ok).toBe(true);
    for (const c of (sub.data as { consumers: { id: string; kind: string }[] }).consumers) if (c.kind === 'video') announced.push(c.id);
    const live = () => announced.filter((id) => !closed.has(id));
    // The old source's consumer closes; one of the new source's is there (announced or in the answer).
    await waitFor(() => (live().length === 1 && announced.length >= 2 ? true : undefined), {
      what: `one live video consumer of the new source (announced ${JSON.stringify(announced)}, closed ${JSON.stringify([...closed])})`,
      timeoutMs: 5000,
    });
    // And it stays the only one: no second consumer of the same source comes later.
    await new Promise((r) => setTimeout(r, 300));
    expect(live()).toHaveLength(1);
    b.close();
    v.close();
  });
});

describe('afterwards', () => {
  it('the bystander is still live and nothing else is left: streams, transports', async () => {
    await settle();
    expect(bystander.c.ws.readyState).toBe(1);
    expect((await liveStreams()).map((s) => [s.id, s.state])).toEqual([[bystander.streamId, 'live']]);
    expect(origin.logs.join('\n')).not.toContain('CASCADE_ERR_INTERNAL');
  });
});
