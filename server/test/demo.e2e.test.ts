import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  RawClient,
  demoState,
  framesGrow,
  freePort,
  goLive,
  issueToken,
  launchChromium,
  startServer,
  videoStats,
  waitFor,
  type NodeProcess,
} from '@cascade/testing';

/**
 * The demo as a user meets it: Debian's Chromium with a fake camera goes live on /broadcast,
 * two /watch pages decode the stream, bad tokens and unknown ids give clear messages.
 * The server's public URL (http.publicUrl) is http://localhost:<port> while the browser opens
 * http://127.0.0.1:<port>: the share link must be built from the former.
 */
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
let origin: NodeProcess;
let publicUrl: string;
let browser: Browser;
let ctx: BrowserContext;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const port = await freePort();
  publicUrl = `http://localhost:${port}`;
  origin = await startServer({ port, env: { CASCADE_HTTP_PUBLIC_URL: `${publicUrl}/` } });
  browser = await launchChromium();
  ctx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
});
afterAll(async () => {
  await browser?.close();
  await origin?.stop();
});

describe('go live from a webcam and watch by stream id', () => {
  let broadcaster: Page;
  let streamId: string;
  const viewers: Page[] = [];

  let shareLink: string;

  it('a title and a click on Go live: the page shows the stream id and a share link on the public URL', async () => {
    broadcaster = await ctx.newPage();
    // As a user does it: the button is enabled once the camera is ready (playwright waits for that).
    await broadcaster.goto(`${origin.url}/broadcast`);
    await broadcaster.locator('#title').fill('Morning run');
    await broadcaster.getByTestId('go-live').click();
    streamId = await waitFor(async () => {
      const d = await demoState(broadcaster);
      if (d?.state === 'error') throw new Error(`broadcast failed: ${JSON.stringify(d.error)}`);
      return d?.state === 'live' ? d.streamId : undefined;
    }, { what: 'the broadcast page to go live' });
    expect(streamId).toMatch(/^[a-z0-9]{10}$/);
    expect(await broadcaster.getByTestId('stream-id').textContent()).toBe(streamId);
    shareLink = `${publicUrl}/watch/${streamId}`;
    expect(await broadcaster.getByTestId('watch-link').getAttribute('href')).toBe(shareLink);
    expect(await broadcaster.locator('#shareUrl').inputValue()).toBe(shareLink);
  });

  it('two viewer pages decode frames at the real size', async () => {
    const preview = await broadcaster.evaluate(() => {
      const v = document.getElementById('preview') as HTMLVideoElement;
      return { width: v.videoWidth, height: v.videoHeight };
    });
    // Viewers follow the share link itself.
    for (let i = 0; i < 2; i++) {
      const v = await ctx.newPage();
      await v.goto(shareLink);
      viewers.push(v);
    }
    for (const v of viewers) {
      const s = await framesGrow(v, 30);
      expect(s.state).toBe('live');
      expect(await v.getByTestId('title').textContent()).toBe('Morning run');
      expect(s.width).toBeGreaterThan(0);
      await waitFor(async () => {
        const now = await videoStats(v);
        return now.width === preview.width && now.height === preview.height;
      }, { what: `viewer video at ${preview.width}x${preview.height}` });
    }
    await viewers[0]!.screenshot({ path: path.join(ARTIFACTS, 'watch.png') });
  });

  it('the broadcaster sees its audience and the home page lists the stream', async () => {
    await waitFor(async () => (await demoState(broadcaster)).viewers === 2, { what: 'viewer count 2 on the broadcast page' });
    await broadcaster.screenshot({ path: path.join(ARTIFACTS, 'broadcast.png') });
    const home = await ctx.newPage();
    await home.goto(origin.url);
    await waitFor(async () => (await home.getByTestId('stream-card').count()) === 1, { what: 'the stream card' });
    await home.screenshot({ path: path.join(ARTIFACTS, 'home.png') });
    await home.close();
  });

  it('hostile clients do not disturb the viewers', async () => {
    const hostile: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      hostile.push(
        (async () => {
          const c = await RawClient.open(origin.url);
          c.send('garbage');
          c.send(JSON.stringify({ v: 1, id: 1, type: 'pipe.open', data: { ticket: 'forged', streamId, ip: '1.2.3.4', port: 9, srtpParameters: { cryptoSuite: 'x', keyBase64: 'y' } } }));
          c.send(JSON.stringify({ v: 1, id: 2, type: 'stream.publish', data: { token: 'nope', streamId } }));
          c.send(JSON.stringify({ v: 1, id: 3, type: 'stream.watch', data: { streamId, pad: 'x'.repeat(200_000) } }));
          return c.closed;
        })(),
      );
    }
    await Promise.all(hostile);
    for (const v of viewers) expect((await framesGrow(v, 20)).state).toBe('live');
  });

  it('when the broadcaster ends the stream, viewers read "ended"', async () => {
    await broadcaster.getByTestId('stop').click();
    for (const v of viewers) {
      await waitFor(async () => (await demoState(v)).state === 'ended', { what: 'viewer state ended' });
      expect(await v.getByTestId('message').textContent()).toContain('ended');
    }
    await viewers[0]!.screenshot({ path: path.join(ARTIFACTS, 'watch-ended.png') });
  });
});

describe('clear messages for what cannot be watched or broadcast', () => {
  it('a development token left in the tab by an earlier server run is replaced, and the page goes live', async () => {
    // What a restarted development server without a secret (a new random one) makes of the old token.
    const stale = issueToken({ scope: ['broadcast'], sub: 'dev-previous-run' }, 'secret-of-the-previous-run-0123456789');
    const page = await ctx.newPage();
    await page.addInitScript((token) => {
      if (sessionStorage.getItem('test-seeded')) return;
      sessionStorage.setItem('test-seeded', '1');
      sessionStorage.setItem('cascade-token', token);
    }, stale);
    await goLive(page, origin.url, 'autostart=1&height=360');
    const kept = await page.evaluate(() => sessionStorage.getItem('cascade-token'));
    expect(kept).toBeTruthy();
    expect(kept).not.toBe(stale);
    await page.getByTestId('stop').click();
    await page.close();
  });

  it('a broadcast with a bad token is refused and the error is shown in the page', async () => {
    const page = await ctx.newPage();
    await page.goto(`${origin.url}/broadcast?autostart=1&token=not.a.token`);
    const s = await waitFor(async () => {
      const d = await demoState(page);
      return d.state === 'error' ? d : undefined;
    }, { what: 'the broadcast page to show an error' });
    expect(s.error?.code).toBe('CASCADE_ERR_AUTH_INVALID_TOKEN');
    expect(await page.getByTestId('error').isVisible()).toBe(true);
    expect(await page.getByTestId('error').textContent()).toContain('CASCADE_ERR_AUTH_INVALID_TOKEN');
    await page.screenshot({ path: path.join(ARTIFACTS, 'broadcast-bad-token.png') });
    await page.close();
  });

  it('a stream whose broadcaster has not started sending says "not live yet"', async () => {
    // A broadcaster that created its stream but sends nothing yet (camera permission pending, say).
    const b = await RawClient.open(origin.url);
    try {
      const published = await b.request('stream.publish', { token: issueToken({ scope: ['broadcast'], sub: 'shy' }) });
      expect(published.ok).toBe(true);
      const id = (published.data as { streamId: string }).streamId;
      const page = await ctx.newPage();
      await page.goto(`${origin.url}/watch/${id}`);
      await waitFor(async () => (await demoState(page)).state === 'waiting', { what: 'waiting state' });
      expect(await page.getByTestId('message').textContent()).toBe('This stream is not live yet');
      await page.screenshot({ path: path.join(ARTIFACTS, 'watch-not-live-yet.png') });
      await page.close();
    } finally {
      b.close();
    }
  });

  it('an unknown stream id says "not found"', async () => {
    const page = await ctx.newPage();
    await page.goto(`${origin.url}/watch/doesnotexist`);
    await waitFor(async () => (await demoState(page)).state === 'notfound', { what: 'notfound state' });
    expect(await page.getByTestId('message').textContent()).toBe('Stream not found');
    await page.screenshot({ path: path.join(ARTIFACTS, 'watch-not-found.png') });
    await page.close();
  });
});

describe('the home page puts nothing from the API into the page as markup', () => {
  it('a stream whose fields carry HTML shows them as text', async () => {
    const page = await ctx.newPage();
    // What a compromised or confused store could hand back: markup in every field the card shows.
    const evil = '<img src=x data-testid=injected onerror="window.__pwned=1">';
    await page.route('**/api/streams', (route) =>
      route.fulfill({
        contentType: 'application/json',
        body: JSON.stringify({ streams: [{ id: 'evil', title: evil, state: evil, viewers: evil, createdAt: Date.now() }] }),
      }),
    );
    await page.goto(`${origin.url}/`);
    await waitFor(async () => (await page.getByTestId('stream-card').count()) === 1, { what: 'the stream card' });
    expect(await page.getByTestId('injected').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.getByTestId('stream-card').textContent()).toContain('<img');
    await page.close();
  });
});
