import { spawn, type ChildProcess } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  framesGrow,
  issueToken,
  launchChromium,
  startChromiumWhip,
  startForeignOrigin,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  watchedVideoCodec,
  type NodeProcess,
  type NodeViewer,
} from '@cascade/testing';

/**
 * The trust anchor covers every ingest: streams published with WHIP (Chromium, H.264 and VP8
 * simulcast) and with plain RTP from ffmpeg (H.264) are signed by the origin like a browser
 * broadcast, and viewers through a relay, in Chromium and in Node, verify every frame.
 */
let origin: NodeProcess;
let relay: NodeProcess & { nodeId: string };
let browser: Browser;
let foreign: { url: string; close(): Promise<void> };
const procs: ChildProcess[] = [];
const cleanup: { stop(): unknown }[] = [];

interface PageIntegrity { state: string; code?: string; nodeId: string }
const pageIntegrity = (page: Page) => page.evaluate(() => (window as unknown as { cascadeWatch?: { integrity?: PageIntegrity & { framesVerified: number; framesRejected: number } } }).cascadeWatch?.integrity);

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_RTP_INGEST_ENABLED: 'true', CASCADE_RTP_INGEST_START_TIMEOUT_MS: '20000' } });
  relay = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'ingest-relay' }), maxViewers: 10 });
  browser = await launchChromium();
  foreign = await startForeignOrigin();
}, 120_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const c of cleanup) await c.stop();
  await foreign?.close();
  await browser?.close().catch(() => {});
  await relay?.stop();
  await origin?.stop();
});

/** A Chromium page and a Node viewer of `streamId`, both through the relay, both verifying frames (none rejected). */
async function verifiedThroughRelay(streamId: string, codec: string): Promise<void> {
  const page = await (await browser.newContext()).newPage();
  cleanup.push({ stop: () => page.context().close() });
  await page.goto(`${origin.url}/watch/${streamId}`);
  const viewer: NodeViewer = await startNodeViewer(origin.url, streamId);
  cleanup.push(viewer);
  expect(viewer.watch.nodeId).toBe(relay.nodeId);
  await framesGrow(page, 30, 60_000);
  expect(await watchedVideoCodec(page)).toBe(codec);
  const p = await waitFor(async () => {
    const s = await pageIntegrity(page);
    return s && s.state === 'verified' && s.framesVerified >= 60 ? s : undefined;
  }, { what: 'the page to verify 60 frames', timeoutMs: 30_000 });
  expect(p.nodeId).toBe(relay.nodeId);
  const n = await waitFor(() => {
    const s = viewer.watch.integrity;
    return s && s.state === 'verified' && s.framesVerified >= 60 ? s : undefined;
  }, { what: 'the Node viewer to verify 60 frames', timeoutMs: 30_000 });
  expect(n.framesRejected).toBe(0);
  expect((await pageIntegrity(page))!.framesRejected).toBe(0);
  expect(await page.getByTestId('integrity').textContent()).toBe('Verified ✓');
}

describe('every ingest is signed, and verifies at viewers through a relay', () => {
  it('WHIP from Chromium, H.264', async () => {
    const pub = await startChromiumWhip(browser, foreign.url, `${origin.url}/whip`, issueToken({ scope: ['broadcast'], sub: 'whip-h264' }), { codec: 'H264' });
    cleanup.push(pub);
    expect(pub.status).toBe(201);
    expect(await pub.videoCodec()).toBe('video/H264');
    await verifiedThroughRelay(pub.streamId, 'video/H264');
  }, 150_000);

  it('WHIP from Chromium, VP8 with simulcast (three layers, each digested)', async () => {
    const pub = await startChromiumWhip(browser, foreign.url, `${origin.url}/whip`, issueToken({ scope: ['broadcast'], sub: 'whip-sim' }), { codec: 'VP8', simulcast: true });
    cleanup.push(pub);
    expect(pub.status).toBe(201);
    await verifiedThroughRelay(pub.streamId, 'video/VP8');
  }, 150_000);

  it('plain RTP from ffmpeg, H.264', async () => {
    const res = await fetch(`${origin.url}/ingest/rtp`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${issueToken({ scope: ['broadcast'], sub: 'ffmpeg-h264' })}` },
      body: JSON.stringify({ video: 'h264', audio: true }),
    });
    expect(res.status).toBe(201);
    const answer = (await res.json()) as { streamId: string; ffmpegOutputArgs: string[] };
    // prettier-ignore
    const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=15',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '120', ...answer.ffmpegOutputArgs], { stdio: 'ignore' });
    procs.push(ff);
    await verifiedThroughRelay(answer.streamId, 'video/H264');
  }, 150_000);
});
