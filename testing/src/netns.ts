/**
 * Network namespaces for multi-host tests: each namespace plays a separate machine with its
 * own address on a private test subnet, reached through a link with an added delay (and
 * optionally loss and a rate limit). Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN) and iproute2;
 * call canCreateNamespaces() first and skip when it says no.
 *
 * Topology ("hub and spokes", both shaping modes):
 *
 *   root ns ──link 0── ┐
 *   ns 1    ──link 1── ┤ hub ns (a bridge, or the userspace delay switch)
 *   ns N    ──link N── ┘
 *
 * - One /24 test subnet 10.A.B.0/24 (A, B random, checked against the host's addresses and
 *   routes; or the `subnet` option's, e.g. 203.0.113.0/24, checked the same way): the root
 *   namespace is 10.A.B.1, namespace i (1-based) is 10.A.B.(10+i), and 10.A.B.254 is never
 *   assigned (an address nobody answers, for negative tests).
 * - Every member sits on the same L2 segment, so members reach each other and the root with
 *   connected routes only: ip_forward is never needed and never touched, and there is no
 *   default route in a namespace (traffic to anything outside the test subnet fails at once
 *   instead of leaking onto the host's network).
 * - `delayMs` of a link is the one-way delay between that member and the hub, applied in
 *   both directions: member a → member b takes delay(a) + delay(b) one way, and the root's
 *   link has `rootDelayMs` (default 0). `lossPercent` and `rateKbit` apply to each namespace
 *   link (not the root's), per direction.
 *
 * Shaping, picked by `shaping: 'auto'` (default) in this order:
 * - 'netem': the hub holds a Linux bridge; every veth end gets `tc qdisc netem`.
 * - 'userspace': for kernels built without sch_netem. Each member's veth carries only a
 *   private /30 underlay (10.A.(B^128).4k+1/30 on the hub side, .4k+2 on the member side),
 *   and the test address lives on a VXLAN device whose only remote is a small Node process
 *   in the hub that switches the frames (delaySwitch.ts).
 * - 'none': the bridge without any delay (when neither is available; `shapingNote` says why).
 *
 * Names carry a random tag and the creating pid (`cascade-test-<tag>-<k>`, links
 * `csv<tag>`/`csx<tag>`), so parallel runs never collide, and a later run removes what a
 * dead run left behind (namespaces of a pid that no longer exists).
 *
 * (Over 450 lines: createTestNetwork builds both shaping modes and undoes each step on failure in
 * one function, so that what is built and what is removed stay side by side.)
 */
import { setTimeout as delay } from 'node:timers/promises';
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { delaySwitch, networkVni, VNI, VXLAN_PORT, type SwitchPeer } from './delaySwitch.js';
import { firstLine, reachProbe, spawnFunction } from './nsFunction.js';
import { pickSubnets } from './subnets.js';

export { DOCUMENTATION_SUBNETS } from './subnets.js';

const execFileP = promisify(execFile);

/** Prefix of every namespace this helper (and natRouter.ts) creates. */
export const NS_PREFIX = 'cascade-test-';
/** `<tag>-<role>`: hub, member k, probe, and natRouter.ts's private LAN hosts (`lan<k>`). */
const STALE_NS = /^cascade-test-([0-9a-f]{4})([0-9a-z]+)-(hub|\d+|probe|r\d+lan\d+)$/;
const STALE_LINK = /^cs[vx]([0-9a-f]{4})([0-9a-z]+)$/;
/** Ceiling for one `ip`/`tc` invocation (ms). */
const CMD_TIMEOUT_MS = 10_000;

export type Shaping = 'netem' | 'userspace' | 'none';

export interface TestNetworkOptions {
  /** Namespaces to create (1..40). */
  count: number;
  /** One-way delay between each namespace and the hub, ms: one value for all, or one per namespace. Default 0. */
  delayMs?: number | number[];
  /** One-way delay of the root namespace's link, ms. Default 0. */
  rootDelayMs?: number;
  /** Packet loss on each namespace link, percent (0..100): one value for all, or one per namespace. Default 0. */
  lossPercent?: number | number[];
  /**
   * Lose only UDP (media, probes) and spare TCP (signalling), to test what loss does to media
   * without TCP retransmission stalls in the way. Userspace shaping only; netem loses everything.
   */
  lossUdpOnly?: boolean;
  /** Rate limit of each namespace link per direction, kbit/s: one value for all, or one per namespace (0: none). Default: none. */
  rateKbit?: number | number[];
  /** Default 'auto': netem if the kernel has it, else the userspace switch (VXLAN), else no shaping. */
  shaping?: Shaping | 'auto';
  /**
   * The test subnet, a /24 such as the documentation range `203.0.113.0/24` (an address Chromium
   * treats as public, unlike 10.x), or a list to take the first free one of (DOCUMENTATION_SUBNETS:
   * two runs at once each get their own). Rejected if it (each of them) overlaps an address or
   * route of this host. Default: a random free 10.A.B.0/24.
   */
  subnet?: string | readonly string[];
}

export interface TestNamespace {
  /** Namespace name (`ip netns exec <name> …`, SpawnOptions.netns). */
  name: string;
  /** Its address on the test subnet. */
  ip: string;
  /** One-way delay of its link as applied, ms (0 when shaping is 'none'). */
  delayMs: number;
}

export interface TestNetwork {
  /** Random tag shared by every name of this network. */
  readonly tag: string;
  /** The root namespace's address on the test subnet (announce this, not 127.0.0.1). */
  readonly rootIp: string;
  /** The test subnet, e.g. 10.213.7.0/24. */
  readonly subnet: string;
  /** An address of the test subnet that nobody holds: packets to it are silently lost. */
  readonly unusedIp: string;
  readonly namespaces: readonly TestNamespace[];
  /** How delays are applied, and why (printed by tests). */
  readonly shaping: Shaping;
  readonly shapingNote: string;
  /** Bytes through namespace `i`'s (0-based) test-subnet interface so far, as that namespace sees them. */
  linkBytes(i: number): Promise<{ rx: number; tx: number }>;
  /** Check by TCP that every namespace reaches the root and every other namespace; rejects naming the pairs that fail. */
  verify(timeoutMs?: number): Promise<void>;
  /** Remove everything (kill what still runs inside, delete namespaces and links). Idempotent; also runs at process exit. */
  cleanup(): Promise<void>;
}

export interface NamespaceSupport {
  ok: boolean;
  /** Why not (for the skip message), or what was checked. */
  reason: string;
}

async function ip(args: string[]): Promise<string> {
  const { stdout } = await execFileP('ip', args, { timeout: CMD_TIMEOUT_MS });
  return stdout;
}

async function tc(args: string[]): Promise<void> {
  await execFileP('tc', args, { timeout: CMD_TIMEOUT_MS });
}

function errText(err: unknown): string {
  const e = err as { stderr?: string; code?: string | number; message?: string };
  if (e?.code === 'ENOENT') return 'command not found';
  return (e?.stderr || e?.message || String(err)).trim().split('\n')[0]!;
}

/** A random tag that also encodes our pid, so that a later run can tell a dead run's leftovers. */
export function newTag(): string {
  return randomBytes(2).toString('hex') + process.pid.toString(36);
}

function pidAlive(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`);
}

let support: Promise<NamespaceSupport> | undefined;

/**
 * Whether this process can build a test network: iproute2 present, network namespaces and
 * veth pairs creatable, `ip netns exec` usable. Never throws; the answer is cached.
 */
export function canCreateNamespaces(): Promise<NamespaceSupport> {
  support ??= (async (): Promise<NamespaceSupport> => {
    if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
    try {
      await ip(['-V']);
    } catch (err) {
      return { ok: false, reason: `iproute2 \`ip\` is not usable: ${errText(err)}` };
    }
    const ns = `${NS_PREFIX}${newTag()}-probe`;
    try {
      await ip(['netns', 'add', ns]);
    } catch (err) {
      return { ok: false, reason: `cannot create a network namespace (needs root or CAP_NET_ADMIN + CAP_SYS_ADMIN): ${errText(err)}` };
    }
    try {
      await ip(['-n', ns, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb']);
      await execFileP('ip', ['netns', 'exec', ns, process.execPath, '-e', ''], { timeout: CMD_TIMEOUT_MS });
      return { ok: true, reason: 'namespaces, veth pairs and ip netns exec work' };
    } catch (err) {
      return { ok: false, reason: `namespace created but not usable (veth or ip netns exec): ${errText(err)}` };
    } finally {
      await ip(['netns', 'delete', ns]).catch(() => undefined);
    }
  })();
  return support;
}

/**
 * Remove namespaces and root links left by runs whose process is gone (a killed test run
 * cannot clean up). Kills what still runs inside those namespaces first (processes an
 * earlier run of this helper started there). Returns what it removed.
 */
export async function cleanupStaleNetworks(): Promise<string[]> {
  const removed: string[] = [];
  const dead = (pid36: string) => !pidAlive(parseInt(pid36, 36));
  const names = (await ip(['netns', 'list']).catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
  for (const name of names) {
    const m = STALE_NS.exec(name);
    if (!m || !dead(m[2]!)) continue;
    await killInside(name);
    await ip(['netns', 'delete', name]).catch(() => undefined);
    removed.push(name);
  }
  const links = (await ip(['-o', 'link', 'show']).catch(() => ''))
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => !!n);
  for (const link of links) {
    const m = STALE_LINK.exec(link);
    if (!m || !dead(m[2]!)) continue;
    await ip(['link', 'delete', link]).catch(() => undefined);
    removed.push(link);
  }
  return removed;
}

/** SIGKILL every process living in namespace `name` (only ever our own, by pid). */
async function killInside(name: string): Promise<void> {
  const pids = (await ip(['netns', 'pids', name]).catch(() => ''))
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((p) => p > 1 && p !== process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

interface Member {
  /** Namespace name, or undefined for the root namespace. */
  ns: string | undefined;
  /** Link index: 0 is the root, i is namespace i. */
  k: number;
  ip: string;
  delayMs: number;
  lossPercent: number;
  rateKbit: number;
  /** Its veth end (in its namespace) and the interface holding the test address. */
  veth: string;
  dev: string;
}

async function detectShaping(hub: string, wanted: Shaping | 'auto', delayed: boolean): Promise<{ shaping: Shaping; note: string }> {
  if (wanted === 'none') return { shaping: 'none', note: 'no shaping asked for' };
  let netem = 'not tried';
  if (wanted === 'auto' || wanted === 'netem') {
    try {
      await ip(['-n', hub, 'link', 'add', 'tqa', 'type', 'veth', 'peer', 'name', 'tqb']);
      await tc(['-n', hub, 'qdisc', 'add', 'dev', 'tqa', 'root', 'netem', 'delay', '1ms']);
      netem = 'ok';
    } catch (err) {
      netem = errText(err);
    } finally {
      await ip(['-n', hub, 'link', 'delete', 'tqa']).catch(() => undefined);
    }
    if (netem === 'ok') return { shaping: 'netem', note: 'tc netem on every link' };
    if (wanted === 'netem') throw new Error(`tc netem is not usable here: ${netem}`);
  }
  let vxlan: string;
  try {
    await ip(['-n', hub, 'link', 'add', 'tvx', 'type', 'vxlan', 'id', String(VNI), 'dstport', String(VXLAN_PORT), 'local', '127.0.0.1']);
    vxlan = 'ok';
  } catch (err) {
    vxlan = errText(err);
  } finally {
    await ip(['-n', hub, 'link', 'delete', 'tvx']).catch(() => undefined);
  }
  if (vxlan === 'ok') return { shaping: 'userspace', note: `tc netem unavailable (${netem}); delays applied by the userspace switch over VXLAN` };
  if (wanted === 'userspace') throw new Error(`VXLAN is not usable here: ${vxlan}`);
  return { shaping: 'none', note: `${delayed ? 'NO DELAY APPLIED: ' : ''}neither tc netem (${netem}) nor VXLAN (${vxlan}) is available` };
}

/**
 * Build N namespaces on a private test subnet (see the file comment for the layout). On any
 * failure everything built so far is removed before the error propagates.
 */
export async function createTestNetwork(options: TestNetworkOptions): Promise<TestNetwork> {
  const count = options.count;
  if (!Number.isInteger(count) || count < 1 || count > 40) throw new TypeError('count must be an integer in 1..40');
  const perNamespace = (v: number | number[] | undefined) => Array.from({ length: count }, (_, i) => (Array.isArray(v) ? v[i] ?? 0 : v ?? 0));
  const delays = perNamespace(options.delayMs);
  const losses = perNamespace(options.lossPercent);
  const rates = perNamespace(options.rateKbit);
  for (const r of rates) if (!(r >= 0)) throw new TypeError('rates are >= 0 kbit/s');
  for (const d of [...delays, options.rootDelayMs ?? 0]) if (!(d >= 0 && d <= 10_000)) throw new TypeError('delays are 0..10000 ms');
  await cleanupStaleNetworks();

  const tag = newTag();
  const vni = networkVni((max) => randomInt(max));
  const hub = `${NS_PREFIX}${tag}-hub`;
  const rootVeth = `csv${tag}`;
  const rootVxlan = `csx${tag}`;
  const created: string[] = [];
  const state = { switchProc: undefined as ChildProcess | undefined, cleaned: false };

  const cleanupSync = () => {
    if (state.cleaned) return;
    state.cleaned = true;
    state.switchProc?.kill('SIGKILL');
    const run = (args: string[]) => {
      try {
        return execFileSync('ip', args, { timeout: CMD_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      } catch {
        return '';
      }
    };
    for (const ns of [...created].reverse()) {
      for (const p of run(['netns', 'pids', ns]).split('\n').map(Number)) {
        if (p > 1 && p !== process.pid) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
      run(['netns', 'delete', ns]);
    }
    run(['link', 'delete', rootVxlan]);
    run(['link', 'delete', rootVeth]);
  };
  process.once('exit', cleanupSync);

  const cleanup = async () => {
    if (state.cleaned) return;
    state.cleaned = true;
    process.off('exit', cleanupSync);
    const sw = state.switchProc;
    if (sw && sw.exitCode === null && sw.signalCode === null) {
      const gone = new Promise((r) => sw.once('exit', r));
      sw.kill('SIGKILL');
      await Promise.race([gone, delay(3000)]);
    }
    for (const ns of [...created].reverse()) {
      await killInside(ns);
      await ip(['netns', 'delete', ns]).catch(() => undefined);
    }
    // Deleting the hub removed the root veth's peer (and so the veth); the VXLAN device stays.
    await ip(['link', 'delete', rootVxlan]).catch(() => undefined);
    await ip(['link', 'delete', rootVeth]).catch(() => undefined);
  };

  try {
    const { test, under } = await pickSubnets(options.subnet);
    const testIp = (host: number) => `${test}.${host}`;
    const underIp = (host: number) => `${under}.${host}`;

    await ip(['netns', 'add', hub]);
    created.push(hub);
    await ip(['-n', hub, 'link', 'set', 'lo', 'up']);
    const delayed = delays.some((d) => d > 0) || (options.rootDelayMs ?? 0) > 0 || losses.some((l) => l > 0) || rates.some((r) => r > 0);
    const { shaping, note } = await detectShaping(hub, options.shaping ?? 'auto', delayed);

    const members: Member[] = [
      { ns: undefined, k: 0, ip: testIp(1), delayMs: options.rootDelayMs ?? 0, lossPercent: 0, rateKbit: 0, veth: rootVeth, dev: shaping === 'userspace' ? rootVxlan : rootVeth },
    ];
    for (let i = 1; i <= count; i++) {
      members.push({
        ns: `${NS_PREFIX}${tag}-${i}`,
        k: i,
        ip: testIp(10 + i),
        delayMs: delays[i - 1]!,
        lossPercent: losses[i - 1]!,
        rateKbit: rates[i - 1]!,
        veth: 'eth0',
        dev: shaping === 'userspace' ? 'vx0' : 'eth0',
      });
    }

    if (shaping !== 'userspace') {
      await ip(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
      await ip(['-n', hub, 'link', 'set', 'br0', 'up']);
    }
    for (const m of members) {
      const n = m.ns ? ['-n', m.ns] : [];
      if (m.ns) {
        await ip(['netns', 'add', m.ns]);
        created.push(m.ns);
        await ip([...n, 'link', 'set', 'lo', 'up']);
        await ip(['-n', hub, 'link', 'add', `m${m.k}`, 'type', 'veth', 'peer', 'name', m.veth, 'netns', m.ns]);
      } else {
        await ip(['link', 'add', m.veth, 'type', 'veth', 'peer', 'name', `m${m.k}`, 'netns', hub]);
      }
      if (shaping === 'userspace') {
        await ip(['-n', hub, 'addr', 'add', `${underIp(4 * m.k + 1)}/30`, 'dev', `m${m.k}`]);
        await ip([...n, 'addr', 'add', `${underIp(4 * m.k + 2)}/30`, 'dev', m.veth]);
      } else {
        await ip(['-n', hub, 'link', 'set', `m${m.k}`, 'master', 'br0']);
        await ip([...n, 'addr', 'add', `${m.ip}/24`, 'dev', m.veth]);
      }
      await ip(['-n', hub, 'link', 'set', `m${m.k}`, 'up']);
      await ip([...n, 'link', 'set', m.veth, 'up']);
      if (shaping === 'userspace') {
        await ip([...n, 'link', 'add', m.dev, 'type', 'vxlan', 'id', String(vni), 'remote', underIp(4 * m.k + 1), 'local', underIp(4 * m.k + 2), 'dstport', String(VXLAN_PORT), 'dev', m.veth, 'nolearning']);
        await ip([...n, 'addr', 'add', `${m.ip}/24`, 'dev', m.dev]);
        await ip([...n, 'link', 'set', m.dev, 'up']);
      }
      if (shaping === 'netem' && (m.delayMs > 0 || m.lossPercent > 0 || m.rateKbit > 0)) {
        const spec = ['delay', `${m.delayMs}ms`, ...(m.lossPercent > 0 ? ['loss', `${m.lossPercent}%`] : []), ...(m.rateKbit > 0 ? ['rate', `${m.rateKbit}kbit`] : [])];
        await tc([...n, 'qdisc', 'add', 'dev', m.veth, 'root', 'netem', ...spec]);
        await tc(['-n', hub, 'qdisc', 'add', 'dev', `m${m.k}`, 'root', 'netem', ...spec]);
      }
    }

    if (shaping === 'userspace') {
      const peers: SwitchPeer[] = members.map((m) => ({ ip: underIp(4 * m.k + 2), delayMs: m.delayMs, lossPercent: m.lossPercent, lossUdpOnly: options.lossUdpOnly ?? false, rateKbit: m.rateKbit }));
      const sw = spawnFunction(hub, delaySwitch, 'node:dgram', { port: VXLAN_PORT, peers });
      state.switchProc = sw;
      sw.stdout!.resume();
      await firstLine(sw, 10_000, 'delay switch');
      sw.stderr!.on('data', (d: Buffer) => process.stderr.write(`[netns delay switch] ${d.toString()}`));
    }

    // Report what the link really does: without shaping there is no delay.
    const nsList: TestNamespace[] = members.slice(1).map((m) => ({ name: m.ns!, ip: m.ip, delayMs: shaping === 'none' ? 0 : m.delayMs }));
    return {
      tag,
      rootIp: testIp(1),
      subnet: `${testIp(0)}/24`,
      unusedIp: testIp(254),
      namespaces: nsList,
      shaping,
      shapingNote: options.lossUdpOnly && shaping === 'netem' ? `${note}; lossUdpOnly ignored: netem loses TCP too` : note,
      async linkBytes(i) {
        const m = members[i + 1];
        if (!m) throw new RangeError(`no namespace ${i}`);
        const [link] = JSON.parse(await ip(['-n', m.ns!, '-j', '-s', 'link', 'show', 'dev', m.dev])) as { stats64: { rx: { bytes: number }; tx: { bytes: number } } }[];
        return { rx: link!.stats64.rx.bytes, tx: link!.stats64.tx.bytes };
      },
      async verify(timeoutMs = 10_000) {
        // Below the ephemeral range and mediasoup's default 40000-49999: free in a fresh namespace, likely free in the root.
        const port = randomInt(30_000, 32_768);
        const all = members.map((m) => m.ip);
        const probes = members.slice(1).map((m) => ({
          m,
          proc: spawnFunction(m.ns, reachProbe, 'node:net', { own: m.ip, port, targets: all.filter((x) => x !== m.ip), timeoutMs }),
        }));
        // The root listens too, so that namespaces' connections to it can succeed.
        const root = spawnFunction(undefined, reachProbe, 'node:net', { own: members[0]!.ip, port, targets: [], timeoutMs });
        try {
          await Promise.all([...probes.map((p) => firstLine(p.proc, timeoutMs, `reachability probe in ${p.m.ns}`)), firstLine(root, timeoutMs, 'reachability probe in the root')]);
          const results = probes.map(async (p) => {
            const line = firstLine(p.proc, timeoutMs * 2, `reachability probe in ${p.m.ns}`);
            p.proc.stdin!.write('go\n');
            return { from: p.m.ip, failed: JSON.parse(await line) as string[] };
          });
          const bad = (await Promise.all(results)).filter((r) => r.failed.length > 0);
          if (bad.length > 0) throw new Error(`test network ${tag}: unreachable ${bad.map((r) => `${r.from} → ${r.failed.join(',')}`).join('; ')}`);
        } finally {
          for (const p of [...probes.map((x) => x.proc), root]) p.kill('SIGKILL');
        }
      },
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * How a relay process runs in namespace `ns`: there, its media on its own address (never
 * loopback), its status page on `port` of that address so that the harness can read it.
 */
export function relayInNamespace(ns: TestNamespace, port: number): { netns: string; host: string; port: number; args: string[] } {
  return { netns: ns.name, host: ns.ip, port, args: ['--listen-ip', ns.ip, '--media-ip', ns.ip, '--http-host', ns.ip] };
}
