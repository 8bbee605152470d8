import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Network namespaces, each behind a link the test network holds to a bandwidth cap: one per viewer on a slow link. */
export interface CappedNetwork {
  /** Namespaces to run capped viewers in, one viewer each (each has its own cap). */
  netns: string[];
  /** The deployment's URL as seen from inside (a loopback host becomes the root namespace's test address). */
  url: string;
  /** How the cap is applied (the userspace switch on kernels without netem). */
  shaping: string;
  cleanup(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** The source address of this host's default route (its primary address), if any. */
async function primaryAddress(): Promise<string | undefined> {
  const { stdout } = await execFileP('ip', ['-4', 'route', 'get', '192.0.2.255'], { timeout: 10_000 }).catch(() => ({ stdout: '' }));
  return /\bsrc (\S+)/.exec(stdout)?.[1];
}

/**
 * `count` namespaces, each behind its own `capKbit` link each way (createTestNetwork: netem, or the userspace
 * switch where the kernel has no netem/tbf). Their default route goes to the root namespace, so
 * that viewers inside reach the deployment at any address of this host (packets for a local
 * address are delivered, never forwarded): the deployment must listen on all addresses and
 * announce a non-loopback media address, `mediaIp` (default: this host's primary address).
 * Needs root.
 *
 * Replies toward the namespace leave from `mediaIp`: a media server's UDP socket bound to
 * 0.0.0.0 answers from the route's preferred source, which would be the root's test-subnet
 * address; a client that checks where its ICE answers come from (werift) would drop them.
 */
export async function startCappedNetwork(url: string, capKbit: number, count: number, mediaIp?: string): Promise<CappedNetwork> {
  // The test harness's namespaces and rate-limited links, loaded only for capped viewers: the
  // load-test tool does not otherwise depend on the harness (see load-tests/package.json).
  const { canCreateNamespaces, createTestNetwork } = await import('@cascade/testing');
  const support = await canCreateNamespaces();
  if (!support.ok) throw new Error(`capped viewers need network namespaces: ${support.reason}`);
  const net = await createTestNetwork({ count, rateKbit: capKbit });
  try {
    for (const ns of net.namespaces) await execFileP('ip', ['-n', ns.name, 'route', 'add', 'default', 'via', net.rootIp], { timeout: 10_000 });
    const src = mediaIp ?? (await primaryAddress());
    if (src) {
      const route = (await execFileP('ip', ['-4', 'route', 'show', net.subnet], { timeout: 10_000 })).stdout.trim().split('\n')[0] ?? '';
      const dev = /\bdev (\S+)/.exec(route)?.[1];
      if (dev) await execFileP('ip', ['route', 'replace', net.subnet, 'dev', dev, 'scope', 'link', 'src', src], { timeout: 10_000 });
    }
    const u = new URL(url);
    if (LOOPBACK.has(u.hostname)) u.hostname = net.rootIp;
    return { netns: net.namespaces.map((ns) => ns.name), url: u.toString().replace(/\/$/, ''), shaping: `${net.shaping} (${net.shapingNote})`, cleanup: () => net.cleanup() };
  } catch (err) {
    await net.cleanup();
    throw err;
  }
}
