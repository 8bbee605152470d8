import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  RawClient,
  fakeDtlsParameters,
  getJson,
  issueToken,
  startServer,
  vp8RtpParameters,
  settled,
  waitFor,
  type NodeProcess,
} from '@cascade/testing';
import { mediaObjects, metric } from './metrics.js';

/**
 * The origin against hostile and careless clients, over real sockets with a real mediasoup
 * worker: every bad input gets its coded error, is logged, and leaves the rest untouched.
 */
let origin: NodeProcess;
const broadcastToken = (sub = 'alice', ttl = 3600) => issueToken({ scope: ['broadcast'], sub }, undefined, ttl);

/** A publisher that creates a real producer (no ICE/DTLS needed for that): the stream is live. */
async function publish(token = broadcastToken(), streamId?: string) {
  const c = await RawClient.open(origin.url);
  const pub = await c.request('stream.publish', { token, ...(streamId ? { streamId } : {}), title: 'test' });
  if (!pub.ok) return { c, pub };
  const t = await c.request('transport.create', { direction: 'send' });
  const prod = await c.request('producer.create', { transportId: t.data!.id, kind: 'video', rtpParameters: vp8RtpParameters() });
  return { c, pub, transport: t, producer: prod, streamId: pub.data!.streamId as string };
}

beforeAll(async () => {
  // A short grace so that streams whose broadcaster vanished end (and free their router) during the test.
  origin = await startServer({
    env: { CASCADE_ORIGIN_RECONNECT_GRACE_MS: '1500', CASCADE_ICE_SERVERS: '[{"urls":"stun:stun.example.org:3478"}]' },
  });
});
afterAll(async () => {
  await origin?.stop();
});

describe('start-up', () => {
  it('production mode without a secret refuses to start with CASCADE_ERR_CONFIG_INVALID', () => {
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'server/dist/main.js')], {
      env: { ...process.env, CASCADE_MODE: 'production', CASCADE_AUTH_SECRET: '', CASCADE_HTTP_PORT: '0' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('CASCADE_ERR_CONFIG_INVALID');
    expect(r.stderr).toContain('auth.secret');
  });

  it('the development run says so in its log', () => {
    expect(origin.logs.join('\n')).toContain('DEVELOPMENT MODE');
  });

  it('announces a real address to clients, never a hard-coded localhost', async () => {
    const c = await RawClient.open(origin.url);
    await c.request('stream.publish', { token: broadcastToken('ivy') });
    const t = await c.request('transport.create', { direction: 'send' });
    const candidates = t.data!.iceCandidates as { ip: string }[];
    expect(candidates.length).toBeGreaterThan(0);
    const hostHasExternal = Object.values(os.networkInterfaces()).some((l) => l?.some((a) => !a.internal && a.family === 'IPv4'));
    if (hostHasExternal) for (const cand of candidates) expect(cand.ip).not.toBe('127.0.0.1');
    c.close();
  });
});

describe('HTTP API', () => {
  it('/healthz answers ok with the node and store', async () => {
    const h = await getJson<Record<string, unknown>>(`${origin.url}/healthz`);
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ status: 'ok', store: 'memory', workers: 1 });
  });

  it('/metrics exposes media objects, signalling errors and Node defaults', async () => {
    const { body } = await getJson<string>(`${origin.url}/metrics`);
    for (const m of ['cascade_media_workers', 'cascade_media_routers', 'cascade_media_transports', 'cascade_media_consumers', 'cascade_media_bytes_sent_total', 'cascade_process_cpu_seconds_total']) {
      expect(body).toContain(m);
    }
  });

  it('an unknown stream is 404 with CASCADE_ERR_STREAM_NOT_FOUND, a bad id 400', async () => {
    expect(await getJson(`${origin.url}/api/streams/nosuchstream`)).toEqual({
      status: 404,
      body: { statusCode: 404, code: 'CASCADE_ERR_STREAM_NOT_FOUND', message: 'stream not found: nosuchstream' },
    });
    expect((await getJson<{ code: string }>(`${origin.url}/api/streams/${'x'.repeat(100)}`)).body.code).toBe('CASCADE_ERR_STREAM_INVALID_ID');
    expect((await getJson<{ code: string }>(`${origin.url}/api/nothing`)).body.code).toBe('CASCADE_ERR_HTTP_NOT_FOUND');
  });

  it('the development token endpoint hands out broadcast tokens', async () => {
    const { body } = await getJson<{ token: string }>(`${origin.url}/api/dev/token`);
    expect((jwt.decode(body.token) as { scope: string[] }).scope).toEqual(['broadcast']);
  });
});

const VP8_ONLY_CAPS = { codecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000, preferredPayloadType: 96, rtcpFeedback: [] }], headerExtensions: [] };

describe('signalling refuses bad input with a coded error', () => {
  // A broadcaster and a viewer with a consumer that live through every bad input below.
  let bystander: { pub: Awaited<ReturnType<typeof publish>>; viewer: RawClient; consumerId: string };
  beforeAll(async () => {
    const pub = await publish(broadcastToken('bystander'));
    const viewer = await RawClient.open(origin.url);
    await viewer.request('stream.watch', { streamId: pub.streamId });
    const t = await viewer.request('transport.create', { direction: 'recv' });
    const sub = await viewer.request('stream.subscribe', { transportId: t.data!.id, rtpCapabilities: VP8_ONLY_CAPS });
    const consumers = (sub.data as { consumers: { id: string }[] }).consumers;
    expect(consumers).toHaveLength(1);
    bystander = { pub, viewer, consumerId: consumers[0]!.id };
  });

  it('an unsupported protocol version is refused before the upgrade (426)', async () => {
    const err = await RawClient.open(origin.url, '/ws', '?v=99').catch((e) => e as { status: number; body: { code: string } });
    expect(err).toMatchObject({ status: 426, body: { code: 'CASCADE_ERR_PROTOCOL_VERSION' } });
  });

  it('malformed JSON, unknown types and invalid params get replies and the socket stays open', async () => {
    const c = await RawClient.open(origin.url);
    c.send('{not json');
    expect(await c.reply(null)).toMatchObject({ ok: false, error: { code: 'CASCADE_ERR_PROTOCOL_MALFORMED' } });
    expect(await c.request('stream.explode', {})).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE' } });
    expect(await c.request('stream.watch', { streamId: 42 })).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' } });
    expect(await c.request('stream.watch', { streamId: 'nosuchstream' })).toMatchObject({ error: { code: 'CASCADE_ERR_STREAM_NOT_FOUND' } });
    expect(c.ws.readyState).toBe(1);
    c.close();
  });

  it('a message over the size limit is answered with TOO_LARGE and the socket closed with 4413', async () => {
    const c = await RawClient.open(origin.url);
    c.send(JSON.stringify({ v: 1, id: 1, type: 'stream.watch', data: { streamId: 'abc', pad: 'x'.repeat(100_000) } }));
    expect(await c.closed).toEqual({ code: 4413, reason: 'CASCADE_ERR_PROTOCOL_TOO_LARGE' });
    expect(c.messages[0]).toMatchObject({ ok: false, error: { code: 'CASCADE_ERR_PROTOCOL_TOO_LARGE' } });
  });

  it('a viewer whose picture stopped asks for a key frame: one a second per consumer is passed on, an unknown consumer is NOT_FOUND', async () => {
    const { viewer, consumerId } = bystander;
    expect(await viewer.request('consumer.requestKeyFrame', { consumerId })).toMatchObject({ ok: true, data: { requested: true } });
    for (let i = 0; i < 5; i++) expect(await viewer.request('consumer.requestKeyFrame', { consumerId })).toMatchObject({ ok: true, data: { requested: false } });
    expect(await viewer.request('consumer.requestKeyFrame', { consumerId: 'nosuchconsumer' })).toMatchObject({ error: { code: 'CASCADE_ERR_MEDIA_CONSUMER_NOT_FOUND' } });
  });

  it('a message flood is cut off with 4429', async () => {
    const c = await RawClient.open(origin.url);
    for (let i = 0; i < 400; i++) c.send(JSON.stringify({ v: 1, id: i, type: 'nope.nope' }));
    expect((await c.closed).code).toBe(4429);
  });

  it('requests out of order are refused with OUT_OF_ORDER', async () => {
    const c = await RawClient.open(origin.url);
    expect(await c.request('stream.subscribe', { transportId: 'x', rtpCapabilities: {} })).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER' } });
    expect(await c.request('transport.create', { direction: 'recv' })).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER' } });
    expect(await c.request('consumer.resume', { consumerId: 'x' })).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER' } });
    expect(await c.request('consumer.requestKeyFrame', { consumerId: 'x' })).toMatchObject({ error: { code: 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER' } });
    expect(await c.request('producer.create', { transportId: 'x', kind: 'video', rtpParameters: vp8RtpParameters() })).toMatchObject({
      error: { code: 'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER' },
    });
    c.close();
  });

  it('missing, expired, forged and wrongly scoped tokens are refused', async () => {
    const c = await RawClient.open(origin.url);
    expect(await c.request('stream.publish', {})).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_MISSING_TOKEN' } });
    const expired = issueToken({ scope: ['broadcast'], sub: 'a' }, undefined, -10);
    expect(await c.request('stream.publish', { token: expired })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_EXPIRED_TOKEN' } });
    const forged = issueToken({ scope: ['broadcast'], sub: 'a' }, 'another-secret-another-secret');
    expect(await c.request('stream.publish', { token: forged })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_INVALID_TOKEN' } });
    const none = jwt.sign({ scope: ['broadcast'], sub: 'a' }, '', { algorithm: 'none' });
    expect(await c.request('stream.publish', { token: none })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_INVALID_TOKEN' } });
    // Signed with the deployment secret itself rather than the broadcast key derived from it (tokens from before kinds had keys).
    const rawSecret = jwt.sign({ scope: ['broadcast'], sub: 'a', jti: 'x' }, 'cascade-test-secret-0123456789', { audience: 'cascade:broadcast', issuer: 'cascade' });
    expect(await c.request('stream.publish', { token: rawSecret })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_INVALID_TOKEN' } });
    const relayToken = issueToken({ scope: ['relay'], sub: 'r' });
    expect(await c.request('stream.publish', { token: relayToken })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_FORBIDDEN' } });
    c.close();
  });

  it('invalid RTP parameters are refused with MEDIA_INVALID_RTP_PARAMETERS', async () => {
    const c = await RawClient.open(origin.url);
    expect((await c.request('stream.publish', { token: broadcastToken() })).ok).toBe(true);
    const t = await c.request('transport.create', { direction: 'send' });
    const bad = { ...vp8RtpParameters(), codecs: [{ mimeType: 'video/NOPE', payloadType: 96, clockRate: 90000 }] };
    expect(await c.request('producer.create', { transportId: t.data!.id, kind: 'video', rtpParameters: bad })).toMatchObject({
      error: { code: 'CASCADE_ERR_MEDIA_INVALID_RTP_PARAMETERS' },
    });
    const dup = await c.request('producer.create', { transportId: t.data!.id, kind: 'video', rtpParameters: vp8RtpParameters() });
    expect(dup.ok).toBe(true);
    expect(await c.request('producer.create', { transportId: t.data!.id, kind: 'video', rtpParameters: vp8RtpParameters(2222) })).toMatchObject({
      error: { code: 'CASCADE_ERR_MEDIA_LIMIT' },
    });
    expect(await c.request('transport.connect', { transportId: 'nope', dtlsParameters: fakeDtlsParameters() })).toMatchObject({
      error: { code: 'CASCADE_ERR_MEDIA_TRANSPORT_NOT_FOUND' },
    });
    c.close();
  });

  it('a second broadcaster for a live stream gets STREAM_ALREADY_LIVE; the first keeps it', async () => {
    const first = await publish();
    expect(first.producer?.ok).toBe(true);
    const intruder = await RawClient.open(origin.url);
    expect(await intruder.request('stream.publish', { token: broadcastToken('mallory'), streamId: first.streamId })).toMatchObject({
      error: { code: 'CASCADE_ERR_STREAM_ALREADY_LIVE' },
    });
    const sameOwner = await RawClient.open(origin.url);
    expect(await sameOwner.request('stream.publish', { token: broadcastToken('alice'), streamId: first.streamId })).toMatchObject({
      error: { code: 'CASCADE_ERR_STREAM_ALREADY_LIVE' },
    });
    expect((await getJson<{ state: string }>(`${origin.url}/api/streams/${first.streamId}`)).body.state).toBe('live');
    for (const c of [first.c, intruder, sameOwner]) c.close();
  });

  it('a viewer of a waiting stream is served and told its state', async () => {
    const c = await RawClient.open(origin.url);
    const pub = await c.request('stream.publish', { token: broadcastToken('carol'), title: 'soon' });
    const v = await RawClient.open(origin.url);
    const w = await v.request('stream.watch', { streamId: pub.data!.streamId });
    expect(w).toMatchObject({ ok: true, data: { action: 'serve', stream: { state: 'waiting', title: 'soon' } } });
    // ICE servers from the config reach clients when they join.
    expect(w.data!.iceServers).toEqual([{ urls: 'stun:stun.example.org:3478' }]);
    c.close();
    v.close();
  });

  it('refused requests are counted by code in /metrics', async () => {
    expect(await metric(origin.url, 'cascade_signal_errors_total')).toBeGreaterThan(0);
    const { body } = await getJson<string>(`${origin.url}/metrics`);
    expect(body).toMatch(/cascade_signal_errors_total\{code="CASCADE_ERR_AUTH_MISSING_TOKEN"[^}]*\} [1-9]/);
  });

  it('bad input is logged with its code', () => {
    const text = origin.logs.join('\n');
    for (const code of [
      'CASCADE_ERR_PROTOCOL_MALFORMED',
      'CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE',
      'CASCADE_ERR_PROTOCOL_INVALID_PARAMS',
      'CASCADE_ERR_PROTOCOL_TOO_LARGE',
      'CASCADE_ERR_PROTOCOL_RATE_LIMITED',
      'CASCADE_ERR_PROTOCOL_OUT_OF_ORDER',
      'CASCADE_ERR_STREAM_NOT_FOUND',
      'CASCADE_ERR_STREAM_ALREADY_LIVE',
      'CASCADE_ERR_AUTH_MISSING_TOKEN',
      'CASCADE_ERR_AUTH_EXPIRED_TOKEN',
      'CASCADE_ERR_AUTH_INVALID_TOKEN',
      'CASCADE_ERR_AUTH_FORBIDDEN',
      'CASCADE_ERR_MEDIA_INVALID_RTP_PARAMETERS',
      'CASCADE_ERR_MEDIA_LIMIT',
      'CASCADE_ERR_MEDIA_TRANSPORT_NOT_FOUND',
    ]) {
      expect(text, code).toContain(code);
    }
    expect(text).toContain('refused unsupported protocol version');
    // and tokens never appear in logs
    expect(text).not.toMatch(/eyJhbGciOi/);
  });

  it('the broadcaster and the viewer that were there all along are still served', async () => {
    const { pub, viewer, consumerId } = bystander;
    expect(pub.c.ws.readyState).toBe(1);
    expect(viewer.ws.readyState).toBe(1);
    expect((await getJson<{ state: string }>(`${origin.url}/api/streams/${pub.streamId}`)).body.state).toBe('live');
    // Its consumer still exists on the worker: resuming it is answered, not refused.
    expect(await viewer.request('consumer.resume', { consumerId })).toMatchObject({ ok: true });
    viewer.close();
    pub.c.close();
  });
});

describe('a client that disconnects at any moment leaves nothing behind', () => {
  it('media objects return to their baseline after clients vanish at every step', async () => {
    await waitFor(async () => {
      const m = await mediaObjects(origin.url);
      return m.transports === 0 && m.producers === 0 ? m : undefined;
    }, { what: 'earlier tests to clean up', timeoutMs: 15_000 });
    const baseline = await mediaObjects(origin.url);
    // A broadcaster that stays, so viewers have something to consume.
    const live = await publish(broadcastToken('dave'));
    // Stream integrity opens the stream's digest tap and channel within its first batch period.
    const withBroadcaster = await settled(() => mediaObjects(origin.url), { what: 'the broadcaster-only count' });
    const steps = [
      async (c: RawClient) => c.request('stream.publish', { token: broadcastToken('eve') }),
      async (c: RawClient) => {
        await c.request('stream.publish', { token: broadcastToken('frank') });
        await c.request('transport.create', { direction: 'send' });
      },
      async (c: RawClient) => {
        await c.request('stream.publish', { token: broadcastToken('grace') });
        const t = await c.request('transport.create', { direction: 'send' });
        await c.request('producer.create', { transportId: t.data!.id, kind: 'video', rtpParameters: vp8RtpParameters() });
      },
      async (c: RawClient) => c.request('stream.watch', { streamId: live.streamId }),
      async (c: RawClient) => {
        await c.request('stream.watch', { streamId: live.streamId });
        await c.request('transport.create', { direction: 'recv' });
      },
      async (c: RawClient) => {
        await c.request('stream.watch', { streamId: live.streamId });
        const t = await c.request('transport.create', { direction: 'recv' });
        const caps = (await c.request('stream.watch', { streamId: live.streamId })).data; // refused: already a viewer
        void caps;
        const sub = await c.request('stream.subscribe', { transportId: t.data!.id, rtpCapabilities: VP8_ONLY_CAPS });
        // A consumer really exists when this client vanishes: the step tests its cleanup.
        expect((sub.data as { consumers: unknown[] }).consumers).toHaveLength(1);
      },
    ];
    // And in the middle of a request: the last one is sent and the socket cut before its answer,
    // so the server finishes its work for a client that is gone. Repeated, as the moment varies.
    const fire = (c: RawClient, type: string, data: unknown) => c.send(JSON.stringify({ v: 1, id: 999, type, data }));
    const midRequest = [
      async (c: RawClient) => fire(c, 'stream.publish', { token: broadcastToken('heidi') }),
      async (c: RawClient) => fire(c, 'stream.watch', { streamId: live.streamId }),
      async (c: RawClient) => {
        await c.request('stream.publish', { token: broadcastToken('ivan') });
        fire(c, 'transport.create', { direction: 'send' });
      },
      async (c: RawClient) => {
        await c.request('stream.publish', { token: broadcastToken('judy') });
        const t = await c.request('transport.create', { direction: 'send' });
        fire(c, 'producer.create', { transportId: t.data!.id, kind: 'video', rtpParameters: vp8RtpParameters() });
      },
      async (c: RawClient) => {
        await c.request('stream.watch', { streamId: live.streamId });
        fire(c, 'transport.create', { direction: 'recv' });
      },
      async (c: RawClient) => {
        await c.request('stream.watch', { streamId: live.streamId });
        const t = await c.request('transport.create', { direction: 'recv' });
        fire(c, 'stream.subscribe', { transportId: t.data!.id, rtpCapabilities: VP8_ONLY_CAPS });
      },
    ];
    for (const step of [...steps, ...midRequest, ...midRequest, ...midRequest]) {
      const c = await RawClient.open(origin.url);
      await step(c);
      // Vanish without a goodbye: a hard socket close.
      c.ws.terminate();
    }
    await waitFor(async () => {
      const m = await mediaObjects(origin.url);
      return m.transports === withBroadcaster.transports && m.producers === withBroadcaster.producers && m.consumers === withBroadcaster.consumers
        ? m
        : undefined;
    }, { what: 'transports, producers and consumers back to the broadcaster-only baseline' });
    // The controller counts no viewer either: places reserved for clients that vanished were given
    // back at once (its own reconciliation would take RECONCILE_GRACE_MS = 10 s, longer than this test).
    expect((await getJson<{ viewers: number }>(`${origin.url}/api/streams/${live.streamId}`)).body.viewers).toBe(0);
    // Only the broadcaster that stayed is live: a producer finished for a vanished one did not make its stream live.
    const { body: all } = await getJson<{ streams: { id: string; state: string }[] }>(`${origin.url}/api/streams?all=1`);
    expect(all.streams.filter((s) => s.state === 'live').map((s) => s.id)).toEqual([live.streamId]);
    live.c.close();
    await waitFor(async () => {
      const m = await mediaObjects(origin.url);
      return m.transports === baseline.transports && m.producers === baseline.producers && m.consumers === baseline.consumers ? m : undefined;
    }, { what: 'media objects back to the baseline once the broadcaster left' });
    // Once the reconnect grace has passed, the streams end and their routers go too.
    await waitFor(async () => ((await mediaObjects(origin.url)).routers === 0 ? true : undefined), {
      what: 'every router closed after the streams ended',
    });
    const { body } = await getJson<{ streams: unknown[] }>(`${origin.url}/api/streams`);
    expect(body.streams).toEqual([]);
  });
});

describe('viewers arriving from a failed node', () => {
  it("have their video resumed only once they can take a key frame and the others arriving are ready (here never: they wait the 1 s cap); another viewer's at once", async () => {
    const pub = await publish(broadcastToken('movers'));
    const setUp = async (exclude?: string[]) => {
      const c = await RawClient.open(origin.url);
      expect(await c.request('stream.watch', { streamId: pub.streamId, ...(exclude ? { exclude } : {}) })).toMatchObject({ ok: true });
      const t = await c.request('transport.create', { direction: 'recv' });
      const sub = await c.request('stream.subscribe', { transportId: t.data!.id, rtpCapabilities: VP8_ONLY_CAPS });
      return { c, consumerId: (sub.data as { consumers: { id: string }[] }).consumers[0]!.id };
    };
    // `exclude`: the SDK names the node it just lost when it watches again. Neither client here
    // completes DTLS, so the mover's resume waits for its transport as long as it may.
    const mover = await setUp(['lost-relay-1']);
    const other = await setUp();
    let moverAnswered = false;
    const moverResume = mover.c.request('consumer.resume', { consumerId: mover.consumerId }).then((r) => ((moverAnswered = true), r));
    expect(await other.c.request('consumer.resume', { consumerId: other.consumerId })).toMatchObject({ ok: true });
    expect(moverAnswered).toBe(false);
    expect(await moverResume).toMatchObject({ ok: true });
    for (const c of [mover.c, other.c, pub.c]) c.close();
  });
});
