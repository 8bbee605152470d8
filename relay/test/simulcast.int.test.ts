import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHROMIUM_ARGS,
  canCreateNamespaces,
  createTestNetwork,
  getJson,
  issueToken,
  launchChromium,
  launchChromiumInNamespace,
  startChromiumBroadcaster,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type TestBroadcaster,
  type TestNetwork,
} from '@cascade/testing';
import type { Browser, Page } from 'playwright-core';

/**
 * Simulcast through a tree of depth 2: a Chromium broadcaster sends three layers (180p, 360p,
 * 720p of a camera picture as costly as a real one); relay A under the origin, relay B under A.
 * A viewer on a free link (on A) decodes 720p; a viewer whose link the test network holds to
 * 500 kbit/s each way (on B, in a network namespace of its own) decodes the lowest layer at its
 * full frame rate; both keep decoding. A viewer asking for audio only receives no video RTP.
 * Bounds are generous ceilings ("it happens"), not speed claims.
 */
const support = await canCreateNamespaces();
if (!support.ok) console.warn(`[simulcast.int.test] SKIPPED: cannot build network namespaces here: ${support.reason}`);

const CAP_KBIT = 500;
const SETTLE_MS = 60_000;

interface PageVideo {
  framesDecoded: number;
  width: number;
  height: number;
  spatialLayer: number | null;
  layers: number;
  quality: string;
  nodeId: string;
}

/** What a /watch page decodes now: its video consumer's stats, the <video> size and the layer the SDK reports. */
function pageVideo(page: Page): Promise<PageVideo> {
  return page.evaluate(async () => {
    const w = (window as unknown as { cascadeWatch?: { consumers: { kind: string; getStats(): Promise<Map<string, { type: string; framesDecoded?: number }>> }[] } }).cascadeWatch;
    const d = (window as unknown as { cascadeDemo: { nodeId?: string; quality?: { quality: string; spatialLayer: number | null; layers: number } } }).cascadeDemo;
    let framesDecoded = 0;
    for (const c of w?.consumers ?? []) {
      if (c.kind !== 'video') continue;
      (await c.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp') framesDecoded += s.framesDecoded ?? 0;
      });
    }
    const v = document.getElementById('video') as HTMLVideoElement;
    return {
      framesDecoded,
      width: v.videoWidth,
      height: v.videoHeight,
      spatialLayer: d.quality?.spatialLayer ?? null,
      layers: d.quality?.layers ?? 0,
      quality: d.quality?.quality ?? '',
      nodeId: d.nodeId ?? '',
    };
  });
}

/**
 * Wait until the page has decoded `frames` more frames at `height` (counted between samples
 * taken a quarter of a second apart that both show that height). A viewer whose link is capped
 * tries a higher layer again now and then (and is moved back down): those moments do not count.
 */
async function decodesAt(page: Page, height: number, frames: number, what: string): Promise<void> {
  let last = await pageVideo(page);
  let counted = 0;
  await waitFor(
    async () => {
      const v = await pageVideo(page);
      if (v.height === height && last.height === height && v.framesDecoded > last.framesDecoded) counted += v.framesDecoded - last.framesDecoded;
      last = v;
      return counted >= frames;
    },
    { what: `${what}: ${frames} more frames at ${height}p (${counted} so far)`, timeoutMs: 45_000, intervalMs: 250 },
  );
}

describe.skipIf(!support.ok)(`simulcast through a tree of depth 2${support.ok ? '' : ` (SKIPPED: ${support.reason})`}`, () => {
  let net: TestNetwork;
  let origin: NodeProcess;
  const relays: (NodeProcess & { nodeId: string })[] = [];
  let b: TestBroadcaster;
  let browser: Browser;
  let cappedBrowser: Browser;
  let free: Page;
  let capped: Page;
  let audio: NodeViewer | undefined;

  beforeAll(async () => {
    net = await createTestNetwork({ count: 1, rateKbit: CAP_KBIT });
    console.info(`[simulcast] viewer ${net.namespaces[0]!.ip} behind ${CAP_KBIT} kbit/s each way; shaping: ${net.shaping} (${net.shapingNote})`);
    origin = await startServer({
      host: net.rootIp,
      env: {
        CASCADE_HTTP_HOST: '0.0.0.0',
        CASCADE_MEDIASOUP_LISTEN_IPS: JSON.stringify([{ ip: net.rootIp, announcedIp: net.rootIp }]),
        CASCADE_ORIGIN_MAX_VIEWERS: '0',
        // One child per node: relay B goes under relay A.
        CASCADE_TOPOLOGY_MAX_CHILDREN: '1',
      },
    });
    for (const [sub, maxViewers] of [['a', 1], ['b', 3]] as const) {
      relays.push(
        await startRelay({ controllerUrl: origin.url, host: net.rootIp, token: issueToken({ scope: ['relay'], sub }), maxViewers, maxChildren: 1, args: ['--listen-ip', net.rootIp, '--media-ip', net.rootIp] }),
      );
    }
    // The watch pages load from the test network's address: a secure context only by this flag.
    const args = [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${origin.url}`];
    browser = await launchChromium(undefined, args);
    b = await startChromiumBroadcaster(`http://127.0.0.1:${origin.port}`, undefined, { height: 720, camera: 'testsrc' });
    free = await browser.newPage();
    await free.goto(`${origin.url}/watch/${b.streamId}`);
    await waitFor(async () => (await pageVideo(free)).framesDecoded > 0, { what: 'the free viewer decoding', timeoutMs: 30_000 });
    cappedBrowser = await launchChromiumInNamespace(net.namespaces[0]!.name, args);
    capped = await cappedBrowser.newPage();
    await capped.goto(`${origin.url}/watch/${b.streamId}`);
    await waitFor(async () => (await pageVideo(capped)).framesDecoded > 0, { what: 'the capped viewer decoding', timeoutMs: 30_000 });
  }, 180_000);

  afterAll(async () => {
    audio?.stop();
    await cappedBrowser?.close();
    await browser?.close();
    await b?.stop();
    for (const r of relays) await r.kill();
    await origin?.stop();
    await net?.cleanup();
  });

  it('the tree has depth 2: the free viewer on relay A, the capped one on relay B under it', async () => {
    const topo = (await getJson<{ depth: number; nodes: { id: string; parent: string | null; viewers: number }[] }>(`${origin.url}/api/streams/${b.streamId}/topology`)).body;
    expect(topo.depth).toBe(2);
    const [a, rb] = relays;
    expect(topo.nodes.find((n) => n.id === rb!.nodeId)?.parent).toBe(a!.nodeId);
    expect((await pageVideo(free)).nodeId).toBe(a!.nodeId);
    expect((await pageVideo(capped)).nodeId).toBe(rb!.nodeId);
  });

  it('the free viewer decodes 720p (the top of three layers); the capped one the lowest layer, 180p; both keep decoding', async () => {
    await waitFor(async () => {
      const [f, c] = [await pageVideo(free), await pageVideo(capped)];
      return f.height === 720 && f.spatialLayer === 2 && c.height === 180 && c.spatialLayer === 0 ? { f, c } : undefined;
    }, { what: 'the free viewer on 720p and the capped one on 180p', timeoutMs: SETTLE_MS, intervalMs: 500 });
    expect((await pageVideo(free)).layers).toBe(3);
    // Each keeps its layer while decoding a hundred frames more (a few seconds at the camera's 30 fps).
    await Promise.all([decodesAt(free, 720, 100, 'the free viewer'), decodesAt(capped, 180, 100, 'the capped viewer')]);
  });

  it('a viewer that picks Low on the watch page sees the resolution drop, and Auto brings 720p back', async () => {
    await free.selectOption('[data-testid=quality]', 'low');
    await waitFor(async () => {
      const v = await pageVideo(free);
      return v.height === 180 && v.quality === 'low' && v.spatialLayer === 0;
    }, { what: 'the free viewer on 180p after choosing Low', timeoutMs: 20_000, intervalMs: 250 });
    expect(await free.textContent('[data-testid=layer]')).toContain('Low');
    await decodesAt(free, 180, 30, 'the viewer that chose Low');
    await free.selectOption('[data-testid=quality]', 'auto');
    await waitFor(async () => (await pageVideo(free)).height === 720, { what: 'the free viewer back on 720p', timeoutMs: SETTLE_MS, intervalMs: 250 });
  });

  it('the broadcaster stops sending its top layer (its uplink dipped): the 720p viewer drops to 360p, then comes back to 720p with it; nobody else disturbed', async () => {
    await waitFor(async () => (await pageVideo(free)).height === 720 || undefined, { what: 'the free viewer on 720p', timeoutMs: SETTLE_MS, intervalMs: 250 });
    const topLayer = (active: boolean) =>
      b.page.evaluate(async (on) => {
        const producers = (window as unknown as { cascadeBroadcast: { producers: { kind: string; rtpSender?: RTCRtpSender }[] } }).cascadeBroadcast.producers;
        const sender = producers.find((p) => p.kind === 'video')!.rtpSender!;
        const params = sender.getParameters();
        params.encodings[params.encodings.length - 1]!.active = on;
        await sender.setParameters(params);
      }, active);
    // The longest wait for a new frame at the 720p viewer, from the top layer's end until it decodes at 360p.
    const off = Date.now();
    await topLayer(false);
    let last = await pageVideo(free);
    let lastNewAt = off;
    let longest = 0;
    await waitFor(
      async () => {
        const v = await pageVideo(free);
        const now = Date.now();
        if (v.framesDecoded !== last.framesDecoded) {
          longest = Math.max(longest, now - lastNewAt);
          lastNewAt = now;
        }
        last = v;
        return v.height === 360 && v.spatialLayer === 1 && v.quality === 'auto';
      },
      { what: 'the 720p viewer on 360p once the top layer stopped', timeoutMs: 20_000, intervalMs: 50 },
    );
    console.info(`[simulcast] top layer stopped: the 720p viewer on 360p after ${Date.now() - off} ms; longest wait for a new frame ${longest} ms (polled every 50 ms)`);
    await decodesAt(free, 360, 30, 'the viewer whose layer stopped');
    await topLayer(true);
    await waitFor(async () => (await pageVideo(free)).height === 720 || undefined, { what: 'the free viewer back on 720p with the top layer', timeoutMs: SETTLE_MS, intervalMs: 250 });
    await decodesAt(capped, 180, 30, 'the capped viewer meanwhile');
  });

  it("quality 'audio' receives audio and no video RTP, gets video with 'low' and loses it again with 'audio'", async () => {
    audio = await startNodeViewer(origin.url, b.streamId, { quality: 'audio' });
    expect(audio.watch.nodeId).toBe(relays[1]!.nodeId);
    await waitFor(() => audio!.counters.packets > 50, { what: 'audio packets', timeoutMs: 20_000 });
    expect(audio.counters.videoPackets).toBe(0);
    expect(audio.watch.consumers.map((c) => c.kind)).toEqual(['audio']);
    audio.watch.setQuality('low');
    await waitFor(() => audio!.counters.frames > 30, { what: 'video frames after switching to low', timeoutMs: 20_000 });
    audio.watch.setQuality('audio');
    await waitFor(() => audio!.watch.consumers.every((c) => c.kind === 'audio') || undefined, { what: 'the video consumer gone', timeoutMs: 10_000 });
    // Whatever was in flight has arrived by now; from here on, no video.
    await sleep(500);
    const video = audio.counters.videoPackets;
    const all = audio.counters.packets;
    await sleep(2000);
    expect(audio.counters.videoPackets).toBe(video);
    expect(audio.counters.packets).toBeGreaterThan(all);
    expect(audio.watch.mediaStream.getVideoTracks()).toHaveLength(0);
    // Nobody else noticed.
    await decodesAt(capped, 180, 30, 'the capped viewer meanwhile');
  });
});
