import type { Browser, Page } from 'playwright-core';
import * as werift from 'werift';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RawClient,
  demoState,
  framesGrow,
  installWeriftGlobals,
  issueToken,
  launchChromium,
  startChromiumBroadcaster,
  startServer,
  waitFor,
  watch,
  type NodeProcess,
  type TestBroadcaster,
} from '@cascade/testing';

/**
 * `auth.watchTokenRequired`: a viewer without a watch token is refused with a coded auth error,
 * one with a watch token (`cascade token watch`) is served: over the raw protocol, through the
 * SDK, and on the demo's /watch/<id>?token=… page.
 */
let origin: NodeProcess;
let browser: Browser;
let broadcaster: TestBroadcaster;
const watchToken = (stream?: string) => issueToken({ scope: ['watch'], sub: 'wendy', ...(stream ? { stream } : {}) });

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_AUTH_WATCH_TOKEN_REQUIRED: 'true' } });
  browser = await launchChromium();
  // The demo's broadcast page (a development server hands it a broadcast token) goes live.
  broadcaster = await startChromiumBroadcaster(origin.url, browser);
});
afterAll(async () => {
  await broadcaster?.stop();
  await browser?.close();
  await origin?.stop();
});

describe('over the protocol', () => {
  const ask = async (data: Record<string, unknown>) => {
    const c = await RawClient.open(origin.url);
    try {
      return await c.request('stream.watch', { streamId: broadcaster.streamId, ...data });
    } finally {
      c.close();
    }
  };

  it('no token: CASCADE_ERR_AUTH_MISSING_TOKEN', async () => {
    expect(await ask({})).toMatchObject({ ok: false, error: { code: 'CASCADE_ERR_AUTH_MISSING_TOKEN' } });
  });

  it('a forged token, a broadcast token, a watch token for another stream: refused with their codes', async () => {
    expect(await ask({ token: issueToken({ scope: ['watch'], sub: 'mallory' }, 'another-secret-0123456789') })).toMatchObject({
      error: { code: 'CASCADE_ERR_AUTH_INVALID_TOKEN' },
    });
    expect(await ask({ token: issueToken({ scope: ['broadcast'], sub: 'bob' }) })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_FORBIDDEN' } });
    expect(await ask({ token: watchToken('someotherstream') })).toMatchObject({ error: { code: 'CASCADE_ERR_AUTH_FORBIDDEN' } });
  });

  it('a watch token (for any stream, or for this one) is served', async () => {
    for (const token of [watchToken(), watchToken(broadcaster.streamId)]) {
      expect(await ask({ token })).toMatchObject({ ok: true, data: { action: 'serve', stream: { id: broadcaster.streamId, state: 'live' } } });
    }
  });
});

describe('through the SDK', () => {
  const sdkWatch = (token?: string) => {
    installWeriftGlobals();
    return watch({
      url: origin.url,
      streamId: broadcaster.streamId,
      ...(token ? { token } : {}),
      WebSocket: WebSocket as never,
      handlerName: 'Chrome111',
      MediaStream: werift.MediaStream as never,
    });
  };

  it('watch() without a token rejects with an AuthError carrying the code', async () => {
    const err = await sdkWatch().then(
      (w) => {
        w.stop();
        throw new Error('watch() without a token was served');
      },
      (e: unknown) => e as { name: string; code: string },
    );
    expect(err).toMatchObject({ name: 'AuthError', code: 'CASCADE_ERR_AUTH_MISSING_TOKEN' });
  });

  it('watch() with a watch token is served', async () => {
    const w = await sdkWatch(watchToken());
    try {
      expect(w.nodeId).toBeTruthy();
      expect(w.stream?.id).toBe(broadcaster.streamId);
      expect(w.streamState).toBe('live');
    } finally {
      w.stop();
    }
  });
});

describe('on the demo page', () => {
  let page: Page;
  afterAll(async () => {
    await page?.context().close();
  });

  it('/watch/<id> without a token says it needs an invitation, with the code', async () => {
    page = await (await browser.newContext()).newPage();
    await page.goto(`${origin.url}/watch/${broadcaster.streamId}`);
    const s = await waitFor(async () => {
      const d = await demoState(page);
      return d.state === 'denied' ? d : undefined;
    }, { what: 'the watch page to say it is not allowed' });
    expect(s.error?.code).toBe('CASCADE_ERR_AUTH_MISSING_TOKEN');
    expect(await page.getByTestId('message').textContent()).toContain('invitation');
  });

  it('/watch/<id>?token=<watch token> plays the stream', async () => {
    await page.goto(`${origin.url}/watch/${broadcaster.streamId}?token=${encodeURIComponent(watchToken(broadcaster.streamId))}`);
    expect((await framesGrow(page, 20)).state).toBe('live');
  });

  it("the broadcaster's share link (no http.publicUrl here) is on the page's own address, without a token", async () => {
    // Watch tokens are handed out separately (cascade token watch); the link carries none.
    expect(await broadcaster.page.getByTestId('watch-link').getAttribute('href')).toBe(`${origin.url}/watch/${broadcaster.streamId}`);
  });
});
