import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultWorkerBin } from '@cascade/config';
import { REPO_ROOT, freePort, getJson, issueToken, startServer, waitFor, type NodeProcess } from '@cascade/testing';

const execFileP = promisify(execFile);

/**
 * The relay package a volunteer installs (`npm run pack:relay`): it installs from its tarball
 * into an empty prefix with nothing from GitHub (mediasoup's postinstall skips its download when
 * MEDIASOUP_WORKER_BIN names a worker, here the Debian build), holds nothing of the repository,
 * and runs from there, outside the repository, as a relay registered with a real origin.
 */
/** The worker scripts/setup.sh built (same lookup as the relay's config). */
const WORKER = defaultWorkerBin(process.env);

describe('the cascade-relay npm package', () => {
  let tgz: string;
  let dir: string;
  let prefix: string;
  let bin: string;
  let installLog: string;
  let origin: NodeProcess;
  let relay: ChildProcess | undefined;

  beforeAll(async () => {
    const packed = await execFileP(process.execPath, [path.join(REPO_ROOT, 'scripts/pack-relay.mjs')], { cwd: REPO_ROOT, timeout: 120_000 });
    tgz = packed.stdout.trim().split('\n').pop()!;
    dir = mkdtempSync(path.join(tmpdir(), 'cascade-relay-install-'));
    prefix = path.join(dir, 'prefix');
    // A volunteer's shell: not in the repository, no workspace on NODE_PATH.
    const env = { ...process.env, MEDIASOUP_WORKER_BIN: WORKER, NODE_PATH: '' };
    const installed = await execFileP('npm', ['install', '-g', '--prefix', prefix, '--foreground-scripts', '--no-audit', '--no-fund', '--prefer-offline', tgz], { cwd: dir, env, timeout: 300_000 });
    installLog = installed.stdout + installed.stderr;
    bin = path.join(prefix, 'bin', 'cascade-relay');
  });

  afterAll(async () => {
    relay?.kill('SIGKILL');
    await origin?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('packs to a tarball whose package.json lists only mediasoup, and holds no repository path', async () => {
    expect(path.basename(tgz)).toMatch(/^cascade-relay-\d+\.\d+\.\d+\.tgz$/);
    const listing = (await execFileP('tar', ['tzf', tgz])).stdout.trim().split('\n').sort();
    expect(listing).toEqual(['package/README.md', 'package/bin/cascade-relay.js', 'package/lib/cli.js', 'package/package.json']);
    const unpacked = path.join(dir, 'unpacked');
    await execFileP('mkdir', ['-p', unpacked]);
    await execFileP('tar', ['xzf', tgz, '-C', unpacked]);
    const pkg = JSON.parse(readFileSync(path.join(unpacked, 'package/package.json'), 'utf8')) as { name: string; dependencies: Record<string, string>; bin: Record<string, string> };
    expect(pkg.name).toBe('cascade-relay');
    expect(pkg.dependencies).toEqual({ mediasoup: '3.12.16' });
    expect(pkg.bin).toEqual({ 'cascade-relay': 'bin/cascade-relay.js' });
    const files: string[] = [];
    const walk = (d: string) => readdirSync(d).forEach((n) => (statSync(path.join(d, n)).isDirectory() ? walk(path.join(d, n)) : files.push(path.join(d, n))));
    walk(unpacked);
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      expect(text.includes(REPO_ROOT), `${f} holds ${REPO_ROOT}`).toBe(false);
      // Workspace packages are inside the bundle, not imported at run time.
      expect(/(?:from\s*|import\(\s*|require\(\s*)["']@cascade\//.test(text), `${f} imports @cascade/*`).toBe(false);
    }
  });

  it('installs into an empty prefix without any download from GitHub (mediasoup uses the given worker)', () => {
    expect(installLog).toContain('MEDIASOUP_WORKER_BIN environment variable given, skipping');
    expect(installLog).not.toMatch(/downloadPrebuiltWorker|github\.com/);
    const modules = readdirSync(path.join(prefix, 'lib', 'node_modules', 'cascade-relay', 'node_modules'));
    expect(modules).toContain('mediasoup');
    expect(modules.some((m) => m.startsWith('@cascade'))).toBe(false);
  });

  it('`cascade-relay --help` runs from the prefix', async () => {
    const r = await execFileP(bin, ['--help'], { cwd: dir, env: { ...process.env, NODE_PATH: '' } });
    expect(r.stdout).toMatch(/^cascade-relay: /);
    expect(r.stdout).toContain('--controller');
    expect(r.stdout).toContain('--token');
  });

  it('the installed relay, started outside the repository, registers with a real origin and is ready', async () => {
    origin = await startServer();
    const port = await freePort();
    const token = issueToken({ scope: ['relay'], sub: 'packaged', volunteer: true });
    const logs: string[] = [];
    relay = spawn(bin, ['--controller', origin.url, '--token', token, '--port', String(port), '--listen-ip', '127.0.0.1', '--media-ip', '127.0.0.1', '--workers', '1'], {
      cwd: dir,
      env: { ...process.env, NODE_PATH: '', MEDIASOUP_WORKER_BIN: WORKER, CASCADE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    relay.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
    relay.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    await waitFor(
      async () => {
        if (relay!.exitCode !== null) throw new Error(`relay exited ${relay!.exitCode}: ${logs.join('').slice(-2000)}`);
        const h = await getJson<Record<string, unknown>>(`http://127.0.0.1:${port}/healthz`);
        return h.status === 200 && h.body.controller === 'ready';
      },
      { timeoutMs: 60_000, what: 'the packaged relay ready' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs.join('').slice(-3000)}`);
    });
    const nodes = await getJson<{ nodes: { id: string; kind: string }[] }>(`${origin.url}/api/nodes`);
    expect(nodes.body.nodes.some((n) => n.kind === 'relay')).toBe(true);
  });
});
