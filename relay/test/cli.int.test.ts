import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, TEST_SECRET, getJson, startRelay, startServer, type NodeProcess } from '@cascade/testing';

/**
 * The command lines operators and volunteers type: a mistyped flag gets one line and the usage
 * (exit status 2), and a token printed by `cascade token relay` registers a real relay.
 */
const run = (script: string, args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [path.join(REPO_ROOT, script), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    // Only what the command is given here: nothing from the test runner's environment.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
  });

describe('a bad command line gets a one-line error and the usage, exit status 2', () => {
  it('cascade-relay --bogus (through the npx link the README documents)', () => {
    const r = run('node_modules/.bin/cascade-relay', ['--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("cascade-relay: unknown option '--bogus'");
    expect(r.stderr).toContain('--controller <url>');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('cascade token relay --bogus', () => {
    const r = run('server/dist/cli.js', ['token', 'relay', '--bogus'], { CASCADE_AUTH_SECRET: TEST_SECRET });
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("cascade: unknown option '--bogus'");
    expect(r.stderr).toContain('cascade token relay     --sub <name>');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it('the server with an unknown flag', () => {
    const r = run('server/dist/main.js', ['--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("cascade: unknown option '--bogus'");
    expect(r.stderr).toContain('--config');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a relay registers with a token from `cascade token relay`', () => {
  let origin: NodeProcess;
  let relay: (NodeProcess & { nodeId: string }) | undefined;
  beforeAll(async () => {
    origin = await startServer();
  });
  afterAll(async () => {
    await relay?.stop();
    await origin?.stop();
  });

  it('registers, passes its reachability probe and is listed in /api/nodes', async () => {
    // `npx cascade token relay`, as the README has operators type it: npm's link, not dist/ directly.
    const token = execFileSync(path.join(REPO_ROOT, 'node_modules/.bin/cascade'), ['token', 'relay', '--sub', 'x'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', CASCADE_AUTH_SECRET: TEST_SECRET },
    }).trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    // startRelay resolves once the controller has accepted the relay and its media address.
    // A volunteer on an 8.5 Mbit/s uplink: at 1.7 Mbit/s a copy, 5 copies, so 2 child relays and 3 viewers.
    relay = await startRelay({ controllerUrl: origin.url, token, maxViewers: 20, maxChildren: 2, args: ['--up-kbps', '8500'] });
    expect(relay.nodeId).toMatch(/^x-[0-9a-f]{6}$/);
    const { body } = await getJson<{ nodes: { id: string; kind: string; volunteer: boolean; status: string; capacity: { maxViewers: number; maxChildren: number } }[] }>(
      `${origin.url}/api/nodes`,
    );
    expect(body.nodes.find((n) => n.id === relay!.nodeId)).toMatchObject({ kind: 'relay', volunteer: false, status: 'ready', capacity: { maxViewers: 3, maxChildren: 2 } });
  });
});
