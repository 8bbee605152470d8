import type { Page } from 'playwright-core';
import { waitFor } from './wait.js';

export interface DemoState {
  page: string;
  state: string;
  streamId?: string;
  nodeId?: string;
  viewers?: number;
  reconnects: number;
  /** Every node the page was served by, and why it went there (the watch page). */
  nodes?: { nodeId: string; why: string; at: number }[];
  error?: { code: string; message: string };
}

export function demoState(page: Page): Promise<DemoState> {
  return page.evaluate(() => (window as unknown as { cascadeDemo: DemoState }).cascadeDemo);
}

/** Open /broadcast and go live; resolves with the stream id. */
export async function goLive(page: Page, baseUrl: string, query = 'autostart=1'): Promise<string> {
  await page.goto(`${baseUrl}/broadcast?${query}`);
  const s = await waitFor(async () => {
    const d = await demoState(page);
    return d && (d.state === 'live' || d.state === 'error') ? d : undefined;
  }, { what: 'the broadcast page to go live' });
  if (s.state !== 'live') throw new Error(`broadcast failed: ${JSON.stringify(s.error)}`);
  return s.streamId!;
}

export interface VideoStats {
  framesDecoded: number;
  width: number;
  height: number;
  state: string;
  nodeId?: string;
  reconnects: number;
}

/** What a /watch page decodes right now (inbound-rtp of its video consumer and the <video> size). */
export function videoStats(page: Page): Promise<VideoStats> {
  return page.evaluate(async () => {
    const w = (window as unknown as { cascadeWatch?: { consumers: { kind: string; getStats(): Promise<Map<string, { type: string; framesDecoded?: number }>> }[] } }).cascadeWatch;
    const d = (window as unknown as { cascadeDemo: DemoState }).cascadeDemo;
    let framesDecoded = 0;
    for (const c of w?.consumers ?? []) {
      if (c.kind !== 'video') continue;
      const stats = await c.getStats();
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp') framesDecoded += s.framesDecoded ?? 0;
      });
    }
    const v = document.getElementById('video') as HTMLVideoElement | null;
    return { framesDecoded, width: v?.videoWidth ?? 0, height: v?.videoHeight ?? 0, state: d.state, nodeId: d.nodeId, reconnects: d.reconnects };
  });
}

/**
 * Wait until the page decodes `frames` more frames (media is really flowing). A counter that
 * goes down means the consumer was replaced (failover): growth is counted across it.
 */
export async function framesGrow(page: Page, frames = 10, timeoutMs = 30_000): Promise<VideoStats> {
  let last = (await videoStats(page)).framesDecoded;
  let grown = 0;
  return waitFor(async () => {
    const s = await videoStats(page);
    grown += s.framesDecoded >= last ? s.framesDecoded - last : s.framesDecoded;
    last = s.framesDecoded;
    return grown >= frames ? s : undefined;
  }, { timeoutMs, what: `${frames} more decoded frames` });
}
