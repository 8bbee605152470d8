import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChromiumBroadcaster, startNodeViewer, startServer, waitFor, type NodeProcess, type TestBroadcaster } from '@cascade/testing';

/**
 * Key frame requests toward the broadcaster are throttled per stream (origin.keyFrameRequestDelayMs):
 * a crowd joining at once, as the viewers of a failed relay do, costs the broadcaster's encoder a
 * key frame per period, not one per viewer, and every viewer still gets a key frame. The period is
 * 3 s here (1 s by default) so that the bound stays far below the number of joins however slow
 * the machine is.
 */
const DELAY_MS = 3000;
const ROUNDS = 3;
const PER_ROUND = 6;

let origin: NodeProcess;
let broadcaster: TestBroadcaster;

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_ORIGIN_KEY_FRAME_REQUEST_DELAY_MS: String(DELAY_MS) } });
  broadcaster = await startChromiumBroadcaster(origin.url);
});
afterAll(async () => {
  await broadcaster?.stop();
  await origin?.stop();
});

/** PLIs and FIRs the broadcaster's browser has received for its video (outbound-rtp). */
function requestsSeen(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const b = (window as unknown as { cascadeBroadcast: { producers: { kind: string; getStats(): Promise<Map<string, { type: string; pliCount?: number; firCount?: number }>> }[] } }).cascadeBroadcast;
    let n = 0;
    for (const p of b.producers) {
      if (p.kind !== 'video') continue;
      (await p.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp') n += (s.pliCount ?? 0) + (s.firCount ?? 0);
      });
    }
    return n;
  });
}

describe('key frame requests toward the broadcaster', () => {
  it(`${ROUNDS * PER_ROUND} viewers joining in bursts: every one gets a key frame, the broadcaster at most one request per ${DELAY_MS} ms`, async () => {
    const before = await requestsSeen(broadcaster.page);
    const started = Date.now();
    for (let round = 0; round < ROUNDS; round++) {
      const viewers = await Promise.all(Array.from({ length: PER_ROUND }, () => startNodeViewer(origin.url, broadcaster.streamId)));
      try {
        await waitFor(() => viewers.every((v) => v.counters.keyframes > 0), { timeoutMs: 20_000, what: 'a key frame at every viewer of the burst' });
      } finally {
        for (const v of viewers) v.stop();
      }
    }
    const elapsedMs = Date.now() - started;
    // The last request may go out just as the window closes: one more than the periods elapsed.
    const bound = Math.floor(elapsedMs / DELAY_MS) + 2;
    const requests = (await requestsSeen(broadcaster.page)) - before;
    expect(requests, `${requests} requests in ${elapsedMs} ms for ${ROUNDS * PER_ROUND} joins`).toBeLessThanOrEqual(bound);
    expect(requests).toBeGreaterThan(0);
  });
});
