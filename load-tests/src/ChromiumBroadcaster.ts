import type { Browser, BrowserContext, Page } from 'playwright-core';

export interface ChromiumBroadcasterOptions {
  url: string;
  /** Passed to the page as ?token=; without it the demo asks the server for a development token. */
  token?: string;
}

const LIVE_TIMEOUT_MS = 30_000;

/**
 * Fallback broadcaster: the web demo's /broadcast page in headless Chromium with the fake
 * camera. Its frames are not stamped, so the test has no delay figures; use it when ffmpeg
 * is missing or to test the real browser publishing path.
 */
export class ChromiumBroadcaster {
  readonly streamId: string;
  readonly #context: BrowserContext;
  readonly #page: Page;
  #closed = false;

  static async start(browser: Browser, options: ChromiumBroadcasterOptions): Promise<ChromiumBroadcaster> {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const q = new URLSearchParams({ autostart: '1', ...(options.token ? { token: options.token } : {}) });
      await page.goto(`${options.url}/broadcast?${q}`, { waitUntil: 'domcontentloaded', timeout: LIVE_TIMEOUT_MS });
      const handle = await page.waitForFunction(
        () => {
          const d = (window as unknown as { cascadeDemo?: { state: string; streamId?: string; error?: { code: string; message: string } } }).cascadeDemo;
          if (d?.state === 'live' && d.streamId) return { streamId: d.streamId };
          if (d?.state === 'error') return { error: `${d.error?.code ?? ''} ${d.error?.message ?? ''}`.trim() };
          return false;
        },
        undefined,
        { timeout: LIVE_TIMEOUT_MS, polling: 100 },
      );
      const res = (await handle.jsonValue()) as { streamId?: string; error?: string };
      if (!res.streamId) throw new Error(`the broadcast page failed: ${res.error ?? 'unknown error'}`);
      return new ChromiumBroadcaster(res.streamId, context, page);
    } catch (err) {
      await context.close().catch(() => {});
      throw err;
    }
  }

  private constructor(streamId: string, context: BrowserContext, page: Page) {
    this.streamId = streamId;
    this.#context = context;
    this.#page = page;
  }

  /** End the stream (the page's Stop button unpublishes it), then close the page. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#page.click('#stop', { timeout: 3000 }).catch(() => {});
    await this.#page
      .waitForFunction(() => (window as unknown as { cascadeDemo?: { state: string } }).cascadeDemo?.state === 'stopped', undefined, { timeout: 3000 })
      .catch(() => {});
    await this.#context.close().catch(() => {});
  }
}
