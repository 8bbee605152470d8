import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium; never a downloaded one. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags measured to work headless on this kind of machine (test-clients/README.md). */
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

export function launchChromium(executablePath = CHROMIUM_PATH, args: readonly string[] = CHROMIUM_ARGS): Promise<Browser> {
  // Playwright's own signal handlers exit the process (130 on Ctrl-C) before our cleanup and
  // report run; the load test closes its browsers itself.
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
