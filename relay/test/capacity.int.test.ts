import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canCreateNamespaces,
  createTestNetwork,
  getJson,
  issueToken,
  metric,
  relayInNamespace,
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

/**
 * A volunteer who declares far more upload than its link has (100 Mbit/s, on a link the test
 * network holds to 3 Mbit/s each way) gets no more viewers than the link carries at the
 * stream's bitrate: the controller measures its upload at admission and places by what
 * arrived. Its viewers play without loss; the others go to a relay with room.
 */
const support = await canCreateNamespaces();
if (!support.ok) console.warn(`[capacity.int.test] SKIPPED: cannot build network namespaces here: ${support.reason}`);

const LINK_KBPS = 3000;
const VIEWER_KBPS = 1700;
const VIEWERS = 5;

interface TopoNode { id: string; viewers: number; bitrateOutKbps: number }

describe.skipIf(!support.ok)(`a relay that declares more upload than it has${support.ok ? '' : ` (SKIPPED: ${support.reason})`}`, () => {
  let net: TestNetwork;
  let origin: NodeProcess;
  let wide: NodeProcess & { nodeId: string };
  let narrow: NodeProcess & { nodeId: string };
  let broadcaster: TestBroadcaster;
  const viewers: NodeViewer[] = [];

  beforeAll(async () => {
    net = await createTestNetwork({ count: 1, rateKbit: LINK_KBPS });
    console.info(`[capacity] ${net.namespaces[0]!.ip} behind ${LINK_KBPS} kbit/s each way; shaping: ${net.shaping} (${net.shapingNote})`);
    origin = await startServer({
      host: net.rootIp,
      env: {
        // Bound everywhere: relays reach it on the test network, the broadcaster's page loads from localhost (a secure context).
        CASCADE_HTTP_HOST: '0.0.0.0',
        CASCADE_MEDIASOUP_LISTEN_IPS: JSON.stringify([{ ip: net.rootIp, announcedIp: net.rootIp }]),
        CASCADE_ORIGIN_MAX_VIEWERS: '0',
        CASCADE_TOPOLOGY_VIEWER_KBPS: String(VIEWER_KBPS),
      },
    });
    // The liar first (the narrow link), so that, were it believed, it would take every viewer.
    narrow = await startRelay({
      ...relayInNamespace(net.namespaces[0]!, 8090),
      controllerUrl: origin.url,
      token: issueToken({ scope: ['relay'], sub: 'narrow', volunteer: true }),
      maxViewers: 20,
      maxChildren: 0,
      args: [...relayInNamespace(net.namespaces[0]!, 8090).args, '--up-kbps', '100000'],
    });
    wide = await startRelay({
      controllerUrl: origin.url,
      token: issueToken({ scope: ['relay'], sub: 'wide', volunteer: true }),
      host: net.rootIp,
      maxViewers: 20,
      maxChildren: 0,
      args: ['--listen-ip', net.rootIp, '--media-ip', net.rootIp, '--up-kbps', '100000'],
    });
    broadcaster = await startChromiumBroadcaster(`http://127.0.0.1:${origin.port}`);
    for (let i = 0; i < VIEWERS; i++) viewers.push(await startNodeViewer(origin.url, broadcaster.streamId));
  }, 180_000);

  afterAll(async () => {
    for (const v of viewers) v.stop();
    await broadcaster?.stop();
    await narrow?.stop();
    await wide?.stop();
    await origin?.stop();
    await net?.cleanup();
  });

  it('the controller measured the narrow link and holds the relay to it', () => {
    const line = origin.logs.find((l) => l.includes('relay uploads less than it declared') && l.includes(narrow.nodeId));
    expect(line, origin.logs.filter((l) => l.includes('upload test')).join('\n')).toBeDefined();
    const { measuredKbps, capacity } = JSON.parse(line!) as { measuredKbps: number; capacity: { maxViewers: number } };
    // What arrived over one second through a queue: near the link's rate, far below the declaration.
    expect(measuredKbps).toBeLessThanOrEqual(LINK_KBPS * 1.25);
    expect(capacity.maxViewers).toBe(Math.floor(measuredKbps / VIEWER_KBPS));
    // The relay with a real link passed its test.
    expect(origin.logs.some((l) => l.includes('upload test passed') && l.includes(wide.nodeId))).toBe(true);
  });

  it('it serves no more viewers than its link carries at the stream\'s bitrate; the rest go to the relay with room', async () => {
    const topo = await waitFor(async () => {
      const t = (await getJson<{ nodes: TopoNode[] }>(`${origin.url}/api/streams/${broadcaster.streamId}/topology`)).body.nodes;
      return t.reduce((n, x) => n + x.viewers, 0) === VIEWERS && t.every((x) => x.viewers === 0 || x.bitrateOutKbps > 0) ? t : undefined;
    }, { what: 'every viewer placed and each relay reporting its bitrate', timeoutMs: 20_000 });
    const onNarrow = viewers.filter((v) => v.watch.nodeId === narrow.nodeId).length;
    expect(onNarrow).toBeGreaterThan(0);
    expect(onNarrow).toBeLessThan(VIEWERS);
    const perViewerKbps = topo.find((n) => n.id === wide.nodeId)!.bitrateOutKbps / viewers.filter((v) => v.watch.nodeId === wide.nodeId).length;
    expect(onNarrow * perViewerKbps, `${onNarrow} viewers at ${Math.round(perViewerKbps)} kbit/s`).toBeLessThanOrEqual(LINK_KBPS);
  });

  it('its viewers receive the stream without sustained loss: as many frames as the viewers of the relay with room', async () => {
    const before = await metric(narrow.url, 'cascade_media_bytes_sent_total');
    const frames = viewers.map((v) => v.counters.frames);
    const started = Date.now();
    // Ten seconds of a live stream: a viewer losing packets for good falls far behind the others.
    await waitFor(() => Date.now() - started > 10_000, { what: 'ten seconds', timeoutMs: 20_000 });
    const fps = (node: string) => viewers.flatMap((v, i) => (v.watch.nodeId === node ? [(v.counters.frames - frames[i]!) / ((Date.now() - started) / 1000)] : []));
    const narrowFps = fps(narrow.nodeId);
    const wideFps = fps(wide.nodeId);
    const what = `frames/s on the narrow relay ${narrowFps.map((f) => f.toFixed(1)).join(', ')}; on the wide one ${wideFps.map((f) => f.toFixed(1)).join(', ')}`;
    expect(Math.min(...narrowFps), what).toBeGreaterThanOrEqual(0.9 * Math.min(...wideFps));
    expect(Math.min(...wideFps), what).toBeGreaterThan(5);
    expect(await metric(narrow.url, 'cascade_media_bytes_sent_total')).toBeGreaterThan(before);
  });
});
