import type { Browser, Page } from 'playwright-core';
import { CHROMIUM_ARGS, ensureFakeCamera, launchChromium } from '@cascade/clients';
import { goLive } from './browser.js';

export interface TestBroadcaster {
  streamId: string;
  page: Page;
  browser: Browser;
  /** Close the page's signalling sockets, as a network blip would. */
  cutSignalling(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Debian's Chromium with its fake camera, going live through the real demo page. The page's
 * WebSockets are recorded on `window.__cascadeSockets` so a test can cut one (a network blip).
 */
export async function startChromiumBroadcaster(
  baseUrl: string,
  browser?: Browser,
  options: {
    height?: number;
    /** More for the broadcast page's URL, e.g. `codec=h264`, `simulcast=0`. */
    query?: string;
    /**
     * 'testsrc': a camera picture as costly to encode as a real one (ensureFakeCamera), in a
     * browser of the broadcaster's own (the camera is chosen at launch; `browser` is then unused).
     */
    camera?: 'fake' | 'testsrc';
  } = {},
): Promise<TestBroadcaster> {
  const own = !browser || options.camera === 'testsrc';
  const b =
    options.camera === 'testsrc'
      ? await launchChromium(undefined, [...CHROMIUM_ARGS, `--use-file-for-fake-video-capture=${ensureFakeCamera(options.height === 360 ? 360 : 720)}`])
      : (browser ?? (await launchChromium()));
  const page = await (await b.newContext()).newPage();
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    const sockets: WebSocket[] = [];
    (window as unknown as { __cascadeSockets: WebSocket[] }).__cascadeSockets = sockets;
    window.WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    } as typeof WebSocket;
  });
  // 360p by default: three times cheaper to encode and decode than the demo's 720p on a 2-core machine.
  const streamId = await goLive(page, baseUrl, `autostart=1&height=${options.height ?? 360}${options.query ? `&${options.query}` : ''}`);
  return {
    streamId,
    page,
    browser: b,
    async cutSignalling() {
      await page.evaluate(() => {
        for (const s of (window as unknown as { __cascadeSockets: WebSocket[] }).__cascadeSockets) s.close(4000, 'test: network blip');
      });
    },
    async stop() {
      await page.context().close().catch(() => {});
      if (own) await b.close().catch(() => {});
    },
  };
}

/**
 * Key frame requests (PLIs and FIRs) the broadcast page's browser has received for its video so
 * far, per RTP stream: by rid with simulcast ('r0' the lowest), '' without.
 */
export function keyFrameRequestsSeen(page: Page): Promise<Record<string, number>> {
  return page.evaluate(async () => {
    const b = (window as unknown as { cascadeBroadcast: { producers: { kind: string; getStats(): Promise<Map<string, { type: string; rid?: string; pliCount?: number; firCount?: number }>> }[] } }).cascadeBroadcast;
    const n: Record<string, number> = {};
    for (const p of b.producers) {
      if (p.kind !== 'video') continue;
      (await p.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp') n[s.rid ?? ''] = (n[s.rid ?? ''] ?? 0) + (s.pliCount ?? 0) + (s.firCount ?? 0);
      });
    }
    return n;
  });
}
