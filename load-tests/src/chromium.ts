/** The load test drives the same Chromium, with the same flags, as the test harness. */
export { CHROMIUM_ARGS, CHROMIUM_PATH, launchChromium } from '@cascade/testing';
