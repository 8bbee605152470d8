import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

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
