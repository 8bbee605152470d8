import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getJson,
  issueToken,
  startNodeViewer,
  startServer,
  startWeriftWhip,
  waitFor,
  whipPost,
  whipRequest,
  type NodeProcess,
  type NodeViewer,
  type WeriftWhipPublisher,
} from '@cascade/testing';

/**
 * WHIP (RFC 9725) with a WHIP client Cascade did not write (werift's RTCPeerConnection) and
 * the SDK's viewers: the stream lives like any other (listed, watched, DELETE ends it, a lost
 * broadcaster leaves it reconnecting until a new POST takes it back), and bad requests get
 * their coded refusals while a stream in progress keeps flowing.
 */
let origin: NodeProcess;
let endpoint: string;
const stops: { stop(): unknown }[] = [];
const broadcastToken = (sub: string, stream?: string) => issueToken({ scope: ['broadcast'], sub, ...(stream ? { stream } : {}) });
const ICE_SERVERS = [{ urls: 'stun:stun.example.org:3478' }, { urls: ['turn:turn.example.org?transport=udp'], username: 'u1', credential: 'p"1' }];
const CHROME_OFFER = readFileSync(new URL('./fixtures/chrome-whip-offer.sdp', import.meta.url), 'utf8');

async function publish(token: string): Promise<WeriftWhipPublisher> {
  const p = await startWeriftWhip(endpoint, token);
  stops.push(p);
  return p;
}
async function viewer(streamId: string): Promise<NodeViewer> {
  const v = await startNodeViewer(origin.url, streamId);
  stops.push(v);
  return v;
}
const streamState = async (id: string) => (await getJson<{ state: string }>(`${origin.url}/api/streams/${id}`)).body.state;
const framesGrow = (v: NodeViewer, n = 10) => {
  const start = v.counters.frames;
  return waitFor(() => v.counters.frames >= start + n, { what: `${n} more frames`, timeoutMs: 30_000 });
};

beforeAll(async () => {
  origin = await startServer({
    env: {
      CASCADE_WHIP_IDLE_TIMEOUT_MS: '2000',
      CASCADE_ORIGIN_RECONNECT_GRACE_MS: '30000',
      CASCADE_ICE_SERVERS: JSON.stringify(ICE_SERVERS),
    },
  });
  endpoint = `${origin.url}/whip`;
});
afterAll(async () => {
  for (const s of stops) await s.stop();
  await origin?.stop();
});

describe('a werift WHIP client', () => {
  let pub: WeriftWhipPublisher;

  it('goes live: 201 with the answer, Location, ETag, the stream id and the ICE servers', async () => {
    pub = await publish(broadcastToken('werift'));
    const { status, headers, body } = pub.response;
    expect(status).toBe(201);
    expect(headers.get('content-type')).toMatch(/^application\/sdp/);
    expect(body).toMatch(/^a=ice-lite\r?$/m);
    expect(pub.location).toMatch(/^\/whip\/[A-Za-z0-9_-]{20,}$/);
    expect(headers.get('etag')).toMatch(/^"[^"]+"$/);
    expect(pub.streamId).toMatch(/^[a-z0-9]{10}$/);
    expect(headers.get('link')).toBe(
      '<stun:stun.example.org:3478>; rel="ice-server", <turn:turn.example.org?transport=udp>; rel="ice-server"; username="u1"; credential="p\\"1"; credential-type="password"',
    );
    await waitFor(async () => (await streamState(pub.streamId)) === 'live', { what: 'the stream to be live' });
    const { body: list } = await getJson<{ streams: { id: string }[] }>(`${origin.url}/api/streams`);
    expect(list.streams.map((s) => s.id)).toContain(pub.streamId);
  });

  it('is watched like any stream', async () => {
    const v = await viewer(pub.streamId);
    await framesGrow(v, 15);
    expect(v.counters.keyframes).toBeGreaterThan(0);
  });

  it('DELETE ends the stream for every viewer; the session is gone afterwards', async () => {
    const viewers = [await viewer(pub.streamId), await viewer(pub.streamId)];
    await Promise.all(viewers.map((v) => framesGrow(v, 5)));
    const del = await pub.delete();
    expect(del.status).toBe(200);
    await waitFor(() => viewers.every((v) => v.counters.ended), { what: 'every viewer to learn the stream ended' });
    expect(await streamState(pub.streamId)).toBe('ended');
    expect((await pub.delete()).status).toBe(404);
  });
});

describe('a broadcaster that comes back', () => {
  it('vanishing without DELETE leaves the stream reconnecting; a POST with a token naming the stream takes it back', async () => {
    const token = broadcastToken('comeback', 'whipcomeback1');
    const first = await publish(token);
    expect(first.streamId).toBe('whipcomeback1');
    const v = await viewer(first.streamId);
    await framesGrow(v, 10);
    await first.stop(); // no DELETE: a crash or a network loss
    await waitFor(async () => (await streamState('whipcomeback1')) === 'reconnecting', { what: 'the stream to wait for its broadcaster' });
    expect(origin.logs.some((l) => l.includes('broadcaster lost') && l.includes('whipcomeback1'))).toBe(true);
    const second = await publish(token);
    expect(second.response.status).toBe(201);
    expect(second.streamId).toBe('whipcomeback1');
    await waitFor(async () => (await streamState('whipcomeback1')) === 'live', { what: 'the stream to be live again' });
    // The same viewer, without rejoining, receives the new broadcaster's media.
    await framesGrow(v, 10);
    expect(v.counters.ended).toBe(false);
    await second.delete();
  });

  it('a second POST while the first still sends takes the stream over; the first session is gone', async () => {
    const token = broadcastToken('takeover', 'whiptakeover1');
    const first = await publish(token);
    const second = await publish(token);
    expect(second.response.status).toBe(201);
    expect(second.streamId).toBe(first.streamId);
    await waitFor(async () => (await first.delete()).status === 404, { what: 'the first session to be gone' });
    expect(await streamState('whiptakeover1')).toBe('live');
    await second.delete();
  });
});

describe('bad requests get coded refusals while a stream flows', () => {
  let bystander: NodeViewer;
  let live: WeriftWhipPublisher;
  const refusal = async (p: Promise<{ status: number; body: string }>) => {
    const r = await p;
    let code = '';
    try {
      code = (JSON.parse(r.body) as { code: string }).code;
    } catch {
      // not JSON
    }
    return { status: r.status, code };
  };

  beforeAll(async () => {
    live = await publish(broadcastToken('bystander', 'whipbystander'));
    bystander = await viewer(live.streamId);
    await framesGrow(bystander, 5);
  });

  it('POST: not SDP 400, wrong type 415, too large 413, no usable codec 406; nothing is created', async () => {
    const token = broadcastToken('careless');
    const count = async () => (await getJson<{ streams: unknown[] }>(`${origin.url}/api/streams?all=1`)).body.streams.length;
    const before = await count();
    expect(await refusal(whipPost(endpoint, 'hello, I am not SDP', token))).toEqual({ status: 400, code: 'CASCADE_ERR_SDP_INVALID' });
    expect(await refusal(whipPost(endpoint, JSON.stringify({ sdp: CHROME_OFFER }), token, 'application/json'))).toEqual({
      status: 415,
      code: 'CASCADE_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
    });
    expect(await refusal(whipPost(endpoint, CHROME_OFFER + 'a=x:'.padEnd(200_000, 'y'), token))).toEqual({ status: 413, code: 'CASCADE_ERR_PROTOCOL_TOO_LARGE' });
    const vp9only = CHROME_OFFER.replace(/^(m=video \d+ \S+) [\d ]+$/m, '$1 98 99').replace(/^(m=audio \d+ \S+) [\d ]+$/m, '$1 0 8');
    expect(await refusal(whipPost(endpoint, vp9only, token))).toEqual({ status: 406, code: 'CASCADE_ERR_SDP_UNSUPPORTED' });
    expect(await count()).toBe(before);
  });

  it('POST: no token 401, a forged one 401, a watch token 403, a stream another broadcaster holds 409', async () => {
    expect(await refusal(whipPost(endpoint, CHROME_OFFER))).toEqual({ status: 401, code: 'CASCADE_ERR_AUTH_MISSING_TOKEN' });
    expect(await refusal(whipPost(endpoint, CHROME_OFFER, issueToken({ scope: ['broadcast'], sub: 'x' }, 'some-other-secret-0123456789')))).toEqual({
      status: 401,
      code: 'CASCADE_ERR_AUTH_INVALID_TOKEN',
    });
    expect(await refusal(whipPost(endpoint, CHROME_OFFER, issueToken({ scope: ['watch'], sub: 'x' })))).toEqual({ status: 403, code: 'CASCADE_ERR_AUTH_FORBIDDEN' });
    expect(await refusal(whipPost(endpoint, CHROME_OFFER, broadcastToken('mallory', live.streamId)))).toEqual({ status: 409, code: 'CASCADE_ERR_STREAM_ALREADY_LIVE' });
  });

  it('DELETE: someone else’s session 403, no token 401, an unknown one 404', async () => {
    expect(await refusal(live.delete(broadcastToken('mallory')))).toEqual({ status: 403, code: 'CASCADE_ERR_AUTH_FORBIDDEN' });
    expect(await refusal(whipRequest(endpoint, live.location, { method: 'DELETE' }))).toEqual({ status: 401, code: 'CASCADE_ERR_AUTH_MISSING_TOKEN' });
    expect(await refusal(whipRequest(endpoint, '/whip/nosuchsession', { method: 'DELETE', token: broadcastToken('bystander') }))).toEqual({
      status: 404,
      code: 'CASCADE_ERR_HTTP_SESSION_NOT_FOUND',
    });
  });

  it('PATCH: trickle 204, no If-Match 428, a stale one 412, wrong type 415; other methods 405', async () => {
    const token = broadcastToken('bystander');
    const etag = live.response.headers.get('etag')!;
    const frag = 'a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\n';
    const patch = (headers: Record<string, string>, body = frag) => whipRequest(endpoint, live.location, { method: 'PATCH', token, headers, body });
    const fragType = { 'Content-Type': 'application/trickle-ice-sdpfrag' };
    expect((await patch({ ...fragType, 'If-Match': etag })).status).toBe(204);
    expect(await refusal(patch(fragType))).toEqual({ status: 428, code: 'CASCADE_ERR_HTTP_PRECONDITION_REQUIRED' });
    expect(await refusal(patch({ ...fragType, 'If-Match': '"stale"' }))).toEqual({ status: 412, code: 'CASCADE_ERR_HTTP_PRECONDITION_FAILED' });
    expect(await refusal(patch({ 'Content-Type': 'application/sdp', 'If-Match': etag }))).toEqual({ status: 415, code: 'CASCADE_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE' });
    const get = await fetch(endpoint);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('OPTIONS, POST');
    expect((await whipRequest(endpoint, live.location, { method: 'PUT', token })).status).toBe(405);
  });

  it('PATCH with If-Match: * restarts ICE: new credentials and a new ETag', async () => {
    const token = broadcastToken('restarter');
    const p = await publish(token);
    const r = await whipRequest(endpoint, p.location, {
      method: 'PATCH',
      token,
      headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*' },
      body: 'a=ice-ufrag:efgh\r\na=ice-pwd:zyxwvutsrqponmlkjihgfedc\r\n',
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/trickle-ice-sdpfrag/);
    expect(r.body).toMatch(/^a=ice-ufrag:\S+\r?$/m);
    expect(r.headers.get('etag')).not.toBe(p.response.headers.get('etag'));
    expect((await p.delete()).status).toBe(200);
  });

  it('recording is off unless the operator enables it: the list says so, starting one is refused, WHIP says disabled', async () => {
    expect((await getJson<{ enabled: boolean; recordings: unknown[] }>(`${origin.url}/api/recordings`)).body).toEqual({ enabled: false, recordings: [] });
    const res = await fetch(`${origin.url}/api/streams/${live.streamId}/recording`, { method: 'POST', headers: { Authorization: `Bearer ${broadcastToken('bystander')}` } });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe('CASCADE_ERR_RECORDING_DISABLED');
    const p = await publish(broadcastToken('wants-a-recording'));
    expect(p.response.headers.get('cascade-recording')).toBeNull();
    const q = await startWeriftWhip(`${endpoint}?record=1`, broadcastToken('wants-a-recording-too'));
    stops.push(q);
    expect(q.response.headers.get('cascade-recording')).toBe('disabled');
    await p.delete();
    await q.delete();
  });

  it('plain RTP ingest is off unless the operator enables it', async () => {
    const res = await fetch(`${origin.url}/ingest/rtp`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${broadcastToken('x')}` }, body: '{}' });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'CASCADE_ERR_HTTP_NOT_FOUND', message: expect.stringContaining('rtpIngest.enabled') });
  });

  it('a CORS preflight from another site is answered', async () => {
    const res = await fetch(endpoint, {
      method: 'OPTIONS',
      headers: { Origin: 'https://encoder.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Authorization/i);
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Location/);
    expect(res.headers.get('accept-post')).toBe('application/sdp');
  });

  it('every refusal was logged with its code, and the stream in progress never stopped', async () => {
    const logs = origin.logs.join('\n');
    for (const code of ['CASCADE_ERR_SDP_INVALID', 'CASCADE_ERR_SDP_UNSUPPORTED', 'CASCADE_ERR_AUTH_FORBIDDEN', 'CASCADE_ERR_HTTP_PRECONDITION_FAILED']) {
      expect(logs).toContain(code);
    }
    await framesGrow(bystander, 15);
    expect(bystander.counters.ended).toBe(false);
    expect(await streamState(live.streamId)).toBe('live');
  });
});
