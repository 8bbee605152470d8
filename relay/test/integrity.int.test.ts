import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import {
  framesGrow,
  getJson,
  issueToken,
  launchChromium,
  startChromiumBroadcaster,
  startHostileRelay,
  startNodeViewer,
  startRelay,
  startServer,
  waitFor,
  type HostileMode,
  type HostileRelay,
  type NodeProcess,
  type NodeViewer,
  type TestBroadcaster,
} from '@cascade/testing';

/**
 * Issue 19: a relay that alters or withholds media is caught by every viewer under it, which
 * moves (make-before-break) to an honest relay and plays again; the origin, asked by the
 * controller, watches through the relay itself and only its finding condemns the relay
 * (demoted, token revoked, shown on /status/<id>).
 *
 * The hostile relay is the real relay process with a test module preloaded
 * (testing/src/hostile/hostileRelayPreload.ts): honest-looking until the test switches it into a
 * mode. Each mode gets a fresh hostile relay and fresh viewers: a Chromium watch page (frames
 * checked in an encoded-streams worker, held until they verify) and a Node viewer (werift,
 * frames rebuilt from RTP). How long each took to notice is printed, not asserted (timings on a
 * shared 2-core machine are measured, not promised); BENCHMARKS.md has the figures.
 */
let origin: NodeProcess;
let a: TestBroadcaster;
let b: TestBroadcaster;
let viewersBrowser: Browser;
const detections: { mode: string; client: string; ms: number; code: string }[] = [];

interface PageIntegrity { state: string; code?: string; nodeId: string; at: number }
const pageLog = (page: Page) => page.evaluate(() => (window as unknown as { cascadeDemo: { integrityLog?: PageIntegrity[] } }).cascadeDemo.integrityLog ?? []);
const pageMoves = (page: Page) => page.evaluate(() => (window as unknown as { cascadeDemo: { nodes?: { nodeId: string; why: string; at: number }[] } }).cascadeDemo.nodes ?? []);
const pageNode = (page: Page) => page.evaluate(() => (window as unknown as { cascadeDemo: { nodeId?: string } }).cascadeDemo.nodeId);

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0' } });
  a = await startChromiumBroadcaster(origin.url);
  b = await startChromiumBroadcaster(origin.url, a.browser);
  viewersBrowser = await launchChromium();
}, 120_000);

afterAll(async () => {
  console.info(`[integrity] detection after the switch (ms):\n${detections.map((d) => `  ${d.mode.padEnd(14)} ${d.client.padEnd(9)} ${String(d.ms).padStart(5)}  ${d.code}`).join('\n')}`);
  await viewersBrowser?.close().catch(() => {});
  await b?.stop();
  await a?.stop();
  await origin?.stop();
});

const ALARM = new Set(['tampered', 'unverified']);
/** What a viewer's detection reads when the origin's condemnation moved it before its own check did. */
const DRAINED = 'moved: the origin condemned the relay first';

/** One round: viewers settle on a fresh hostile relay, an honest one comes, the hostile one switches to `mode`. */
async function round(mode: HostileMode, expectCodes: string[], options: { swap?: boolean; minCarryMs?: number } = {}) {
  const hostile: HostileRelay = await startHostileRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: `mallory-${mode}` }), maxViewers: 6 });
  let honest: (NodeProcess & { nodeId: string }) | undefined;
  let nodeViewer: NodeViewer | undefined;
  let otherViewer: NodeViewer | undefined;
  const context = await viewersBrowser.newContext();
  try {
    const page = await context.newPage();
    const carriedSince = Date.now();
    // The hostile relay is the only one with room: everyone goes there.
    await page.goto(`${origin.url}/watch/${a.streamId}`);
    nodeViewer = await startNodeViewer(origin.url, a.streamId);
    if (options.swap) otherViewer = await startNodeViewer(origin.url, b.streamId);
    expect(nodeViewer.watch.nodeId).toBe(hostile.nodeId);
    if (otherViewer) expect(otherViewer.watch.nodeId).toBe(hostile.nodeId);
    await waitFor(async () => (await pageNode(page)) === hostile.nodeId && (await pageLog(page)).some((e) => e.state === 'verified'), { what: 'the page to verify frames from the hostile relay', timeoutMs: 30_000 });
    await waitFor(() => nodeViewer!.watch.integrity?.state === 'verified' && (!otherViewer || otherViewer.watch.integrity?.state === 'verified'), { what: 'the Node viewers to verify frames', timeoutMs: 30_000 });
    if (options.minCarryMs) await new Promise((r) => setTimeout(r, Math.max(0, carriedSince + options.minCarryMs! - Date.now())));
    honest = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: `honest-${mode}` }), maxViewers: 6 });

    // Honest so far: an alarm before the switch would be a false one (and would hide the real one, states stick).
    const early = nodeViewer.counters.integrity.filter((e) => ALARM.has(e.state));
    expect(early, `alarms before the switch: ${JSON.stringify(early)}; integrity ${JSON.stringify(nodeViewer.watch.integrity)}; SDK warnings: ${nodeViewer.counters.warnings.join('; ')}`).toEqual([]);
    const nodeMovesBefore = nodeViewer.counters.nodeReasons.length;
    const otherMovesBefore = otherViewer?.counters.nodeReasons.length ?? 0;
    const pageMovesBefore = (await pageMoves(page)).length;
    const at = await hostile.setMode(mode);
    // Every viewer under the relay stops trusting it: by itself, or told to move because the
    // origin confirmed another viewer's report first (its own probe, then a drain). Seen in CI: a
    // Node viewer of a swapping relay was drained with no alarm of its own (locally the page
    // notices a swap in about 0.43 s, the Node viewer in 0.62 s). At least one of them must notice
    // by itself (the origin probes only on a viewer's report), and whoever noticed must say why.
    const condemned = () => origin.logs.some((l) => l.includes('relay condemned') && l.includes(hostile.nodeId));
    const nodeCaught = (v: NodeViewer, movesBefore: number, what: string) =>
      waitFor(
        () => {
          const own = v.counters.integrity.find((e) => e.at >= at && e.nodeId === hostile.nodeId && ALARM.has(e.state));
          if (own) return { at: own.at, code: own.code ?? '' };
          const drained = v.counters.nodeReasons.slice(movesBefore).some((r) => r.endsWith(' draining'));
          return drained && condemned() ? { at: Date.now(), code: DRAINED } : undefined;
        },
        { what, timeoutMs: 15_000 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}; it was on ${v.watch.nodeId} (${v.counters.nodeReasons.join(', ')}), integrity ${JSON.stringify(v.watch.integrity)}, events ${JSON.stringify(v.counters.integrity.slice(-5))}, SDK warnings: ${v.counters.warnings.join('; ')}`);
      });
    const nodeAlarm = await nodeCaught(nodeViewer, nodeMovesBefore, `the Node viewer to notice ${mode}`);
    const pageAlarm = await waitFor(
      async () => {
        const own = (await pageLog(page)).find((e) => e.at >= at && e.nodeId === hostile.nodeId && ALARM.has(e.state));
        if (own) return { at: own.at, code: own.code ?? '' };
        const drained = (await pageMoves(page)).slice(pageMovesBefore).find((m) => m.why === 'draining');
        return drained && condemned() ? { at: drained.at, code: DRAINED } : undefined;
      },
      { what: `the page to notice ${mode}`, timeoutMs: 15_000 },
    );
    const alarms = [{ client: 'node', ...nodeAlarm }, { client: 'chromium', ...pageAlarm }];
    if (otherViewer) alarms.push({ client: 'node (B)', ...(await nodeCaught(otherViewer, otherMovesBefore, 'the viewer of the other stream to notice the swap')) });
    for (const a of alarms) detections.push({ mode, client: a.client, ms: a.at - at, code: a.code });
    expect(alarms.filter((a) => a.code !== DRAINED).length, `nobody noticed by themselves: ${JSON.stringify(alarms)}`).toBeGreaterThan(0);
    for (const a of alarms) expect([...expectCodes, DRAINED]).toContain(a.code);

    // They move to the honest relay and play again, verified.
    await waitFor(() => nodeViewer!.watch.nodeId === honest!.nodeId && nodeViewer!.watch.integrity?.state === 'verified', { what: 'the Node viewer verified on the honest relay', timeoutMs: 30_000 });
    const verified = nodeViewer.watch.integrity!.framesVerified;
    await waitFor(() => (nodeViewer!.watch.integrity?.framesVerified ?? 0) >= verified + 30, { what: 'the Node viewer to verify more frames there', timeoutMs: 30_000 });
    await waitFor(async () => (await pageNode(page)) === honest!.nodeId && (await pageLog(page)).at(-1)?.state === 'verified', { what: 'the page verified on the honest relay', timeoutMs: 30_000 });
    await framesGrow(page, 20);
    expect(await page.getByTestId('integrity').textContent()).toBe('Verified ✓');
    if (otherViewer) await waitFor(() => otherViewer!.watch.nodeId === honest!.nodeId && otherViewer!.watch.integrity?.state === 'verified', { what: 'the viewer of the other stream verified on the honest relay', timeoutMs: 30_000 });

    // The origin confirmed it itself: condemned, token revoked, on /status/<id>.
    await waitFor(() => origin.logs.some((l) => l.includes('relay condemned') && l.includes(hostile.nodeId)) || undefined, { what: 'the relay condemned', timeoutMs: 15_000 });
    await waitFor(() => origin.logs.some((l) => l.includes('token revoked') && l.includes(hostile.nodeId)) || undefined, { what: "the relay's token revoked" });
    const topo = await getJson<{ removed: { nodeId: string; code: string }[] }>(`${origin.url}/api/streams/${a.streamId}/topology`);
    expect(topo.body.removed.map((r) => r.nodeId)).toContain(hostile.nodeId);
    const status = await context.newPage();
    await status.goto(`${origin.url}/status/${a.streamId}`);
    await status.locator(`[data-testid="removed-relay"][data-node-id="${hostile.nodeId}"]`).waitFor({ timeout: 10_000 });
    // Cut off once drained: registering again with its token is refused.
    await waitFor(() => hostile.logs.some((l) => l.includes('CASCADE_ERR_AUTH_REVOKED_TOKEN')) || undefined, { what: 'the relay cut off with its revoked token', timeoutMs: 20_000 });
  } finally {
    nodeViewer?.stop();
    otherViewer?.stop();
    await context.close().catch(() => {});
    await honest?.stop();
    await hostile.stop();
  }
}

/** When (epoch ms) the Node viewer's SDK first warned with `text`, at or after `since` (its warnings begin with the UTC time of day). */
function warnedAt(warnings: string[], text: string, since: number): number | undefined {
  for (const w of warnings) {
    if (!w.includes(text)) continue;
    const [h, m, sec] = w.slice(0, 12).split(':').map(Number) as [number, number, number];
    const midnight = new Date(since).setUTCHours(0, 0, 0, 0);
    let t = midnight + ((h * 60 + m) * 60 + sec) * 1000;
    if (t < since - 43_200_000) t += 86_400_000; // past midnight since
    if (t >= since - 5) return t;
  }
  return undefined;
}

/** A relay that answers everything but sends no media: its viewers' pictures stop, and they move. */
async function stall() {
  const hostile = await startHostileRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'mallory-blackhole' }), maxViewers: 6 });
  let honest: (NodeProcess & { nodeId: string }) | undefined;
  let nodeViewer: NodeViewer | undefined;
  const context = await viewersBrowser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${origin.url}/watch/${a.streamId}`);
    nodeViewer = await startNodeViewer(origin.url, a.streamId);
    await waitFor(async () => (await pageNode(page)) === hostile.nodeId && (await pageLog(page)).some((e) => e.state === 'verified'), { what: 'the page to play from the relay', timeoutMs: 30_000 });
    await waitFor(() => nodeViewer!.watch.integrity?.state === 'verified', { what: 'the Node viewer to play from the relay', timeoutMs: 30_000 });
    honest = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'honest-blackhole' }), maxViewers: 6 });
    const at = await hostile.setMode('blackhole');
    await waitFor(() => nodeViewer!.watch.nodeId === honest!.nodeId || undefined, { what: 'the Node viewer to leave the silent relay', timeoutMs: 20_000 });
    const nodeMoved = Date.now();
    await waitFor(async () => (await pageNode(page)) === honest!.nodeId || undefined, { what: 'the page to leave the silent relay', timeoutMs: 20_000 });
    const pageMoved = Date.now();
    const nodeDetected = warnedAt(nodeViewer.counters.warnings, 'picture stopped', at);
    expect(nodeDetected, nodeViewer.counters.warnings.join('\n')).toBeDefined();
    detections.push(
      { mode: 'blackhole', client: 'node', ms: nodeDetected! - at, code: 'stalled (detected)' },
      { mode: 'blackhole', client: 'node', ms: nodeMoved - at, code: 'moved (playing elsewhere)' },
      { mode: 'blackhole', client: 'chromium', ms: pageMoved - at, code: 'moved (playing elsewhere)' },
    );
    await framesGrow(page, 20);
    const verified = nodeViewer.watch.integrity?.framesVerified ?? 0;
    await waitFor(() => (nodeViewer!.watch.integrity?.framesVerified ?? 0) >= verified + 30, { what: 'the Node viewer to play again', timeoutMs: 30_000 });
    // The controller heard of it; a stopped picture alone condemns nobody (the origin's probe sees no frame to judge).
    await waitFor(() => origin.logs.some((l) => l.includes('"state":"stalled"') && l.includes(hostile.nodeId)) || undefined, { what: 'the report of the stall at the controller' });
    expect(origin.logs.some((l) => l.includes('relay condemned') && l.includes(hostile.nodeId))).toBe(false);
    // When each viewer's report reached the origin (its log's time): the page's detection, bounded from above.
    const reports = origin.logs.filter((l) => l.includes('"state":"stalled"') && l.includes(hostile.nodeId)).map((l) => Number(/"time":(\d+)/.exec(l)?.[1]));
    detections.push({ mode: 'blackhole', client: 'both', ms: Math.max(...reports) - at, code: `last of ${reports.length} stall reports at the origin` });
  } finally {
    nodeViewer?.stop();
    await context.close().catch(() => {});
    await honest?.stop();
    await hostile.stop();
  }
}

describe('a viewer whose picture stops moves, whatever the cause', () => {
  it('a relay that sends no media while it answers everything else', () => stall(), 150_000);
});

describe('a hostile relay is caught by every viewer under it, and condemned on the origin\'s own finding', () => {
  it('flipped bits in video payloads (headers intact)', () => round('flip', ['CASCADE_ERR_INTEGRITY_FRAME_MISMATCH']), 150_000);
  it("another stream's frames instead", () => round('swap', ['CASCADE_ERR_INTEGRITY_FRAME_MISMATCH'], { swap: true }), 150_000);
  it('media and digests replayed from 10 s earlier', () => round('replay', ['CASCADE_ERR_INTEGRITY_STALE', 'CASCADE_ERR_INTEGRITY_FRAME_MISMATCH', 'CASCADE_ERR_INTEGRITY_DIGESTS_MISSING'], { minCarryMs: 11_000 }), 150_000);
  it('digest channel dropped', () => round('drop-digests', ['CASCADE_ERR_INTEGRITY_DIGESTS_MISSING']), 150_000);
  it('digest channel delayed by 2 s', () => round('delay-digests', ['CASCADE_ERR_INTEGRITY_DIGESTS_MISSING', 'CASCADE_ERR_INTEGRITY_STALE']), 150_000);
});
