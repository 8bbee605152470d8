import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getJson,
  issueToken,
  launchChromium,
  startChromiumWhep,
  startForeignOrigin,
  startRelay,
  startServer,
  startWeriftWhip,
  waitFor,
  whipPost,
  type BrowserWhepPlayer,
  type NodeProcess,
  type WeriftWhipPublisher,
} from '@cascade/testing';

/**
 * WHEP players Cascade did not write (Chromium's RTCPeerConnection in a page on another site)
 * watch through the deployment's one endpoint: the origin signals for them, on itself or on the
 * relay the controller placed them on. The origin serves one viewer (origin.maxViewers = 1).
 */
let origin: NodeProcess;
let relay: NodeProcess & { nodeId: string };
let browser: Browser;
let foreign: Awaited<ReturnType<typeof startForeignOrigin>>;
let pub: WeriftWhipPublisher;
const stops: { stop(): unknown }[] = [];
const CHROME_WHIP_OFFER = readFileSync(new URL('./fixtures/chrome-whip-offer.sdp', import.meta.url), 'utf8');
const CHROME_WHEP_OFFER = readFileSync(new URL('./fixtures/chrome-whep-offer.sdp', import.meta.url), 'utf8');

async function player(streamId = pub.streamId, token?: string): Promise<BrowserWhepPlayer> {
  const p = await startChromiumWhep(browser, foreign.url, `${origin.url}/whep/${streamId}`, token);
  stops.push(p);
  return p;
}
async function decodes(p: BrowserWhepPlayer, frames = 20): Promise<void> {
  const start = (await p.video()).frames;
  await waitFor(async () => (await p.video()).frames >= start + frames, { what: `${frames} decoded frames`, timeoutMs: 30_000 });
}
const topology = async (id: string) =>
  (await getJson<{ nodes: { id: string; viewers: number }[] }>(`${origin.url}/api/streams/${id}/topology`)).body.nodes;

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '1' } });
  relay = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'whep-relay' }), maxViewers: 5 });
  browser = await launchChromium();
  foreign = await startForeignOrigin();
  pub = await startWeriftWhip(`${origin.url}/whip`, issueToken({ scope: ['broadcast'], sub: 'whep-source', stream: 'whepsource01' }));
  await waitFor(async () => (await getJson<{ state: string }>(`${origin.url}/api/streams/${pub.streamId}`)).body.state === 'live', { what: 'the source' });
});
afterAll(async () => {
  for (const s of stops) await s.stop();
  await pub?.stop();
  await browser?.close();
  await foreign?.close();
  await relay?.stop();
  await origin?.stop();
});

describe('WHEP through the public endpoint', () => {
  let first: BrowserWhepPlayer;
  let second: BrowserWhepPlayer;

  it('a player on another site is answered (201, Location, ETag, the serving node) and decodes, on the origin', async () => {
    first = await player();
    expect(first.status).toBe(201);
    expect(first.headers['content-type']).toMatch(/^application\/sdp/);
    expect(first.headers.location).toMatch(new RegExp(`^/whep/${pub.streamId}/[A-Za-z0-9_-]{20,}$`));
    expect(first.headers.etag).toMatch(/^"[^"]+"$/);
    expect(first.headers['cascade-node-id']).not.toBe(relay.nodeId);
    await decodes(first);
    expect((await first.video()).codec).toBe('video/VP8');
  });

  it('the next player, beyond the origin’s budget, is served by the relay through the same endpoint and decodes', async () => {
    second = await player();
    expect(second.status).toBe(201);
    expect(second.headers['cascade-node-id']).toBe(relay.nodeId);
    await decodes(second);
    await waitFor(async () => (await topology(pub.streamId)).find((n) => n.id === relay.nodeId)?.viewers === 1, { what: 'the relay to count its viewer' });
  });

  it('DELETE ends a session and the relay lets the viewer go', async () => {
    expect(await second.delete()).toBe(200);
    await waitFor(async () => ((await topology(pub.streamId)).find((n) => n.id === relay.nodeId)?.viewers ?? 0) === 0, { what: 'the relay to let its viewer go' });
    expect(await second.delete()).toBe(404);
  });

  it('a player keeps playing when the broadcaster reconnects (a new WHIP POST takes the stream over)', async () => {
    const again = await startWeriftWhip(`${origin.url}/whip`, issueToken({ scope: ['broadcast'], sub: 'whep-source', stream: 'whepsource01' }));
    expect(again.response.status).toBe(201);
    await pub.stop();
    pub = again;
    await decodes(first, 30);
  });

  it('a player whose relay dies loses its media; posting again (as players do) places it elsewhere', async () => {
    const onRelay = await player();
    expect(onRelay.headers['cascade-node-id']).toBe(relay.nodeId);
    await decodes(onRelay);
    await relay.kill();
    await waitFor(async () => ['disconnected', 'failed', 'closed'].includes((await onRelay.video()).connection), { what: 'the player to notice', timeoutMs: 60_000 });
    await first.delete(); // make room on the origin
    const back = await player();
    expect(back.status).toBe(201);
    expect(back.headers['cascade-node-id']).not.toBe(relay.nodeId);
    await decodes(back);
    // A player that closes its peer connection without DELETE: its DTLS close ends the session.
    await back.page.evaluate(() => (window as unknown as { pc: RTCPeerConnection }).pc.close());
    await waitFor(() => origin.logs.some((l) => l.includes('WHEP viewer left') && l.includes('player gone')), { what: 'the session to end' });
  });
});

describe('WHEP refusals', () => {
  const post = async (streamId: string, sdp: string, type = 'application/sdp') => {
    const r = await whipPost(`${origin.url}/whep/${streamId}`, sdp, undefined, type);
    let code = '';
    try {
      code = (JSON.parse(r.body) as { code: string }).code;
    } catch {
      // not JSON
    }
    return { status: r.status, code };
  };

  it('unknown or ended streams, bad SDP, a sending offer, wrong types and methods get their codes', async () => {
    expect(await post('nosuchstream', CHROME_WHEP_OFFER)).toEqual({ status: 404, code: 'CASCADE_ERR_STREAM_NOT_FOUND' });
    expect(await post(pub.streamId, 'not an offer')).toEqual({ status: 400, code: 'CASCADE_ERR_SDP_INVALID' });
    expect(await post(pub.streamId, CHROME_WHIP_OFFER)).toEqual({ status: 406, code: 'CASCADE_ERR_SDP_UNSUPPORTED' });
    expect(await post(pub.streamId, CHROME_WHEP_OFFER, 'text/plain')).toEqual({ status: 415, code: 'CASCADE_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE' });
    expect(await post('bad id!', CHROME_WHEP_OFFER)).toEqual({ status: 400, code: 'CASCADE_ERR_STREAM_INVALID_ID' });
    expect((await fetch(`${origin.url}/whep/${pub.streamId}`)).status).toBe(405);
    expect((await fetch(`${origin.url}/whep/${pub.streamId}/nosuchsession`, { method: 'DELETE' })).status).toBe(404);
    const ended = await startWeriftWhip(`${origin.url}/whip`, issueToken({ scope: ['broadcast'], sub: 'short-lived' }));
    stops.push(ended);
    await ended.delete();
    await waitFor(async () => (await post(ended.streamId, CHROME_WHEP_OFFER)).code === 'CASCADE_ERR_STREAM_ENDED', { what: 'the ended stream to be refused' });
    expect(origin.logs.some((l) => l.includes('WHEP request refused') && l.includes('CASCADE_ERR_SDP_UNSUPPORTED'))).toBe(true);
  });

  it('a CORS preflight from another site is answered', async () => {
    const res = await fetch(`${origin.url}/whep/${pub.streamId}`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://player.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Cascade-Node-Id/);
  });
});

describe('WHEP where watching needs a token', () => {
  let guarded: NodeProcess;
  let source: WeriftWhipPublisher;
  beforeAll(async () => {
    guarded = await startServer({ env: { CASCADE_AUTH_WATCH_TOKEN_REQUIRED: 'true' } });
    source = await startWeriftWhip(`${guarded.url}/whip`, issueToken({ scope: ['broadcast'], sub: 'guarded' }));
  });
  afterAll(async () => {
    await source?.stop();
    await guarded?.stop();
  });

  it('refuses a player without one (401) and plays with one', async () => {
    const endpoint = `${guarded.url}/whep/${source.streamId}`;
    expect((await whipPost(endpoint, CHROME_WHEP_OFFER)).status).toBe(401);
    const p = await startChromiumWhep(browser, foreign.url, endpoint, issueToken({ scope: ['watch'], sub: 'invited' }));
    stops.push(p);
    expect(p.status).toBe(201);
    await decodes(p);
  });
});
