import type { Browser, Page } from 'playwright-core';
import { goLive, launchChromium } from './browser.js';

export interface TestBroadcaster {
  streamId: string;
  page: Page;
  browser: Browser;
  stop(): Promise<void>;
}

/** Debian's Chromium with its fake camera, going live through the real demo page. */
export async function startChromiumBroadcaster(baseUrl: string, browser?: Browser): Promise<TestBroadcaster> {
  const b = browser ?? (await launchChromium());
  const page = await b.newPage();
  const streamId = await goLive(page, baseUrl);
  return {
    streamId,
    page,
    browser: b,
    async stop() {
      await page.close().catch(() => {});
      if (!browser) await b.close().catch(() => {});
    },
  };
}
