import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFrameRequestsSeen, launchChromium, startChromiumBroadcaster, startNodeViewer, startServer, waitFor, type NodeProcess, type NodeViewer, type TestBroadcaster } from '@cascade/testing';
import type { Browser } from 'playwright-core';

/**
 * Key frame requests toward the broadcaster are throttled: per layer for a simulcast
 * broadcaster (origin.layerKeyFrameRequestDelayMs), per stream for a single-layer one
 * (origin.keyFrameRequestDelayMs). A crowd joining at once, as the viewers of a failed relay do,
 * costs the broadcaster's encoder a key frame per period and layer, not one per viewer, and
 * every viewer still gets a key frame. The periods here are longer than the defaults so that
 * the bounds stay far below the number of joins however slow the machine is.
 */
const LAYER_DELAYS_MS = [1500, 3000, 4500];
const DELAY_MS = 3000;
const ROUNDS = 3;
const PER_ROUND = 6;

let origin: NodeProcess;
let browser: Browser;

beforeAll(async () => {
  origin = await startServer({
    env: { CASCADE_ORIGIN_KEY_FRAME_REQUEST_DELAY_MS: String(DELAY_MS), CASCADE_ORIGIN_LAYER_KEY_FRAME_REQUEST_DELAY_MS: JSON.stringify(LAYER_DELAYS_MS) },
  });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await origin?.stop();
});

/** ROUNDS bursts of PER_ROUND joins; resolves with the time it took once every viewer of each burst got a key frame. */
async function joinStorm(streamId: string): Promise<number> {
  const started = Date.now();
  for (let round = 0; round < ROUNDS; round++) {
    const viewers: NodeViewer[] = await Promise.all(Array.from({ length: PER_ROUND }, () => startNodeViewer(origin.url, streamId)));
    try {
      await waitFor(() => viewers.every((v) => v.counters.keyframes > 0), { timeoutMs: 20_000, what: 'a key frame at every viewer of the burst' });
    } finally {
      for (const v of viewers) v.stop();
    }
  }
  return Date.now() - started;
}

describe('key frame requests toward a simulcast broadcaster', () => {
  let b: TestBroadcaster;
  beforeAll(async () => {
    b = await startChromiumBroadcaster(origin.url, browser);
  });
  afterAll(() => b?.stop());

  it(`${ROUNDS * PER_ROUND} viewers joining in bursts: every one gets a key frame, each layer at most one request per its period (${LAYER_DELAYS_MS.join(' / ')} ms)`, async () => {
    // The page's stats list a layer once it has sent on it; right after going live that may be the top one only.
    const before = await waitFor(
      async () => {
        const n = await keyFrameRequestsSeen(b.page);
        return Object.keys(n).length === 3 ? n : undefined;
      },
      { what: "the broadcast page's stats of its three layers", timeoutMs: 15_000 },
    );
    expect(Object.keys(before).sort()).toEqual(['r0', 'r1', 'r2']);
    const elapsedMs = await joinStorm(b.streamId);
    // Joins step up from the lowest layer on their own time; what they have asked for by now counts.
    const after = await keyFrameRequestsSeen(b.page);
    const elapsedNow = elapsedMs + 1000;
    const counts = ['r0', 'r1', 'r2'].map((rid) => after[rid]! - before[rid]!);
    console.info(`[keyFrames] requests per layer over ${elapsedNow} ms: ${counts.join(" / ")}`);
    counts.forEach((n, layer) => {
      // The last request may go out just as the window closes, and the layer's own start asks once;
      // and mediasoup asks again when a requested key frame has not come within a second
      // (KeyFrameRetransmissionWaitTime in its KeyFrameRequestManager), which a busy machine's
      // encoder can take: three more than the periods elapsed, still far below one per join.
      const bound = Math.floor(elapsedNow / LAYER_DELAYS_MS[layer]!) + 3;
      expect(n, `layer ${layer}: ${n} requests in ${elapsedNow} ms for ${ROUNDS * PER_ROUND} joins (${JSON.stringify(counts)})`).toBeLessThanOrEqual(bound);
    });
    // Joins start on the lowest layer: its key frames are the ones asked for.
    expect(counts[0]).toBeGreaterThan(0);
  });
});

describe('key frame requests toward a single-layer broadcaster', () => {
  let b: TestBroadcaster;
  beforeAll(async () => {
    b = await startChromiumBroadcaster(origin.url, browser, { query: 'simulcast=0' });
  });
  afterAll(() => b?.stop());

  it(`${ROUNDS * PER_ROUND} viewers joining in bursts: every one gets a key frame, the broadcaster at most one request per ${DELAY_MS} ms`, async () => {
    const before = await keyFrameRequestsSeen(b.page);
    expect(Object.keys(before)).toEqual(['']);
    const elapsedMs = await joinStorm(b.streamId);
    // As above: the edges of the window, and mediasoup's own repeat of a request unanswered for a second.
    const bound = Math.floor(elapsedMs / DELAY_MS) + 3;
    const requests = (await keyFrameRequestsSeen(b.page))['']! - before['']!;
    expect(requests, `${requests} requests in ${elapsedMs} ms for ${ROUNDS * PER_ROUND} joins`).toBeLessThanOrEqual(bound);
    expect(requests).toBeGreaterThan(0);
  });
});
