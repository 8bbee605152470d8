import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  demoState,
  framesGrow,
  getJson,
  issueToken,
  launchChromium,
  startChromiumWhip,
  startForeignOrigin,
  startRelay,
  startServer,
  waitFor,
  watchedVideoCodec,
  type BrowserWhipPublisher,
  type NodeProcess,
} from '@cascade/testing';

/**
 * Chromium's own RTCPeerConnection publishing over WHIP from a page on another origin (so
 * every request goes through CORS), watched on the demo's /watch page. The origin serves no
 * viewer itself (origin.maxViewers = 0): every viewer is placed on the relay.
 */
let origin: NodeProcess;
let relay: NodeProcess & { nodeId: string };
let browser: Browser;
let foreign: Awaited<ReturnType<typeof startForeignOrigin>>;
const open: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0' } });
  relay = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'whip-relay' }), maxViewers: 10 });
  browser = await launchChromium();
  foreign = await startForeignOrigin();
});
afterAll(async () => {
  for (const o of open) await o.stop();
  await browser?.close();
  await foreign?.close();
  await relay?.stop();
  await origin?.stop();
});

async function watchPage(streamId: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  open.push({ stop: () => page.context().close() });
  await page.goto(`${origin.url}/watch/${streamId}`);
  return page;
}

describe('WHIP from Chromium on another site', () => {
  let pub: BrowserWhipPublisher;
  let viewer: Page;

  it('goes live with H.264 and Opus: 201, the answer, and headers the page may read', async () => {
    pub = await startChromiumWhip(browser, foreign.url, `${origin.url}/whip`, issueToken({ scope: ['broadcast'], sub: 'chromium-h264' }), { codec: 'H264' });
    open.push(pub);
    expect(pub.status).toBe(201);
    expect(pub.headers['content-type']).toMatch(/^application\/sdp/);
    expect(pub.headers.location).toMatch(/^\/whip\/[A-Za-z0-9_-]{20,}$/);
    expect(pub.headers.etag).toMatch(/^"[^"]+"$/);
    expect(pub.streamId).toMatch(/^[a-z0-9]{10}$/);
    expect(await waitFor(async () => ((await pub.videoCodec()) === 'video/H264' ? true : undefined), { what: 'the sender to use H.264' })).toBe(true);
    const { body } = await getJson<{ streams: { id: string; state: string }[] }>(`${origin.url}/api/streams`);
    expect(body.streams).toContainEqual(expect.objectContaining({ id: pub.streamId, state: 'live' }));
  });

  it('a Chromium viewer decodes the H.264 stream through the relay', async () => {
    viewer = await watchPage(pub.streamId);
    await framesGrow(viewer, 20, 60_000);
    expect(await watchedVideoCodec(viewer)).toBe('video/H264');
    expect((await demoState(viewer)).nodeId).toBe(relay.nodeId);
  });

  it('DELETE from the page (a cross-origin request) ends the stream for its viewers', async () => {
    expect(await pub.delete()).toBe(200);
    await waitFor(async () => (await demoState(viewer)).state === 'ended', { what: 'the viewer to read ended' });
    const { body } = await getJson<{ state: string }>(`${origin.url}/api/streams/${pub.streamId}`);
    expect(body.state).toBe('ended');
  });
});

describe('WHIP simulcast', () => {
  it('an offer with three RIDs is answered with simulcast and watched', async () => {
    const pub = await startChromiumWhip(browser, foreign.url, `${origin.url}/whip`, issueToken({ scope: ['broadcast'], sub: 'chromium-simulcast' }), {
      codec: 'VP8',
      simulcast: true,
      height: 360,
    });
    open.push(pub);
    expect(pub.status).toBe(201);
    expect(pub.body).toMatch(/^a=simulcast:recv q;h;f\r?$/m);
    const viewer = await watchPage(pub.streamId);
    await framesGrow(viewer, 20, 60_000);
    expect(await watchedVideoCodec(viewer)).toBe('video/VP8');
    await pub.stop();
  });
});
