import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { waitFor } from './wait.js';

/** Flags measured to work headless on Debian's Chromium (fake camera, no GPU, no background traffic). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--disable-quic',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's Chromium; never a downloaded one. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export function launchChromium(executablePath = CHROMIUM_PATH, args: readonly string[] = CHROMIUM_ARGS): Promise<Browser> {
  // Playwright's own signal handlers exit the process (130 on Ctrl-C) before the caller's
  // cleanup runs; whoever launches the browser closes it.
  return chromium.launch({
    executablePath,
    headless: true,
    args: [...args],
    timeout: 30_000,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
}

/**
 * Chromium running inside network namespace `netns` (a viewer on another "machine", e.g. behind
 * a rate-limited link of createTestNetwork()). Playwright talks to it over the pipe it inherits
 * through `ip netns exec`, so only its network differs.
 */
export function launchChromiumInNamespace(netns: string, args: readonly string[] = CHROMIUM_ARGS): Promise<Browser> {
  if (!/^[A-Za-z0-9_.-]+$/.test(netns)) throw new TypeError(`bad namespace name ${netns}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'cascade-chromium-'));
  const wrapper = path.join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${netns} ${CHROMIUM_PATH} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return launchChromium(wrapper, args);
}

export interface DemoState {
  page: string;
  state: string;
  streamId?: string;
  nodeId?: string;
  viewers?: number;
  reconnects: number;
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
