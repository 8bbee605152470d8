import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  demoState,
  goLive,
  launchChromium,
  startRelay,
  startServer,
  waitFor,
  type NodeProcess,
} from '@cascade/testing';

/**
 * A new user on the demo, in Debian's Chromium: signs up from the Volunteer page, gets a relay
 * token there and starts a relay with the line it shows; goes live under their name; a viewer
 * spills to the relay (the origin serves nobody itself) and /status shows the volunteer's
 * name; revoking the token on the page drains the relay.
 */
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
let origin: NodeProcess;
let relay: (NodeProcess & { nodeId: string }) | undefined;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // Settled every second, at a rate that shows on the page within seconds of relaying.
  origin = await startServer({ env: { CASCADE_ORIGIN_MAX_VIEWERS: '0', CASCADE_CREDITS_SETTLE_INTERVAL_MS: '1000', CASCADE_CREDITS_RECEIPT_INTERVAL_MS: '1000', CASCADE_CREDITS_POINTS_PER_GB: '1000' } });
  browser = await launchChromium();
  ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await ctx.newPage();
});
afterAll(async () => {
  await relay?.stop();
  await browser?.close();
  await origin?.stop();
});

const nodes = async () => ((await (await fetch(`${origin.url}/api/nodes`)).json()) as { nodes: { id: string; volunteer: boolean; status: string }[] }).nodes;

describe('volunteering from the demo', () => {
  let command = '';

  it('the Volunteer page asks a signed-out visitor to sign in; signing up brings them back, signed in', async () => {
    await page.goto(`${origin.url}/volunteer`);
    await page.getByTestId('signed-out').waitFor();
    await page.getByText('Sign in or create an account').click();
    await page.waitForURL(/\/account\?next=%2Fvolunteer|\/account\?next=\/volunteer/);
    await page.getByTestId('tab-signup').click();
    await page.getByTestId('name').fill('Vera');
    await page.getByTestId('password').fill('a long enough password');
    await page.getByTestId('submit').click();
    await page.waitForURL(/\/volunteer$/);
    await waitFor(async () => (await demoState(page))?.state === 'ready', { what: 'the Volunteer page' });
    expect(await page.getByTestId('account-link').textContent()).toBe('Vera');
    expect(await page.getByTestId('balance').textContent()).toBe('0');
  });

  it('Get my relay token shows the one line to run; the relay it starts registers as Vera\'s volunteer relay', async () => {
    await page.getByTestId('get-token').click();
    await page.getByTestId('relay-command').waitFor({ state: 'visible' });
    command = (await page.getByTestId('relay-command').textContent()) ?? '';
    expect(command).toMatch(/^npm run relay -- --controller http:\/\/\S+ --token [\w-]+\.[\w-]+\.[\w-]+$/);
    const token = command.split('--token ')[1]!;
    await waitFor(async () => (await page.getByTestId('token-row').count()) === 1, { what: 'the token listed' });
    // What the line runs (npm run relay is the setup check, then this), against the test's loopback address.
    relay = await startRelay({ controllerUrl: origin.url, token });
    expect(relay.nodeId).toMatch(/^Vera-[0-9a-f]{6}$/);
    expect((await nodes()).find((n) => n.id === relay!.nodeId)).toMatchObject({ volunteer: true, status: 'ready' });
  });

  it('a signed-in user goes live under their name, a viewer spills to the relay, and /status shows the volunteer by name', async () => {
    const broadcaster = await ctx.newPage();
    const streamId = await goLive(broadcaster, origin.url);
    expect((await demoState(broadcaster)) as unknown).toMatchObject({ tokenSource: 'account' });
    const viewer = await ctx.newPage();
    await viewer.goto(`${origin.url}/watch/${streamId}`);
    await waitFor(async () => {
      const d = await demoState(viewer);
      return d?.state === 'live' && d.nodeId === relay!.nodeId;
    }, { what: 'the viewer served by the volunteer relay', timeoutMs: 60_000 });
    const status = await ctx.newPage();
    await status.goto(`${origin.url}/status/${streamId}`);
    await waitFor(async () => (await status.getByTestId('volunteer-name').count()) > 0, { what: 'the volunteer on the status page' });
    expect(await status.getByTestId('volunteer-name').first().textContent()).toBe('Vera');
    await status.screenshot({ path: path.join(ARTIFACTS, 'status-volunteer.png') });
    // The Volunteer page refreshes itself: Vera's balance grows while her relay serves the viewer.
    const balance = async () => Number(await page.getByTestId('balance').textContent());
    const first = await waitFor(async () => ((await balance()) > 0 ? balance() : undefined), { what: "Vera's balance to grow", timeoutMs: 30_000 });
    await waitFor(async () => (await balance()) > first, { what: 'her balance to keep growing', timeoutMs: 30_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'volunteer.png'), fullPage: true });
    await Promise.all([broadcaster.close(), viewer.close(), status.close()]);
  });

  it('revoking the token on the page drains the relay and takes it out of the tree', async () => {
    await page.getByTestId('revoke').first().click();
    await page.locator('.badge.revoked').first().waitFor();
    await waitFor(async () => !(await nodes()).some((n) => n.id === relay!.nodeId && n.status === 'ready'), { what: 'the relay drained', timeoutMs: 20_000 });
    await waitFor(async () => !(await nodes()).some((n) => n.id === relay!.nodeId), { what: 'the relay cut off', timeoutMs: 30_000 });
  });
});
