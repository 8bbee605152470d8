/**
 * A home router for tests: one namespace of a test network (netns.ts) becomes the router, its
 * test-subnet address the WAN address, and private namespaces sit behind it on a LAN.
 *
 *   test network (e.g. 203.0.113.0/24) ── WAN dev ─ router ns ─ br "lan0" 192.168.77.1/24
 *                                                                ├─ private ns 192.168.77.11
 *                                                                └─ private ns 192.168.77.12 …
 *
 * - ip_forward on in the router namespace only; `iptables -t nat … MASQUERADE` rewrites LAN → WAN
 *   traffic to the WAN address; the private namespaces have a default route via the router.
 * - An nftables table `inet homerouter` does what a home router's firewall does: forward LAN → WAN
 *   and replies, nothing else from the WAN unless miniupnpd opened it (its chains live in the same
 *   table: miniupnpd's nftables backend adds DNAT and accept rules there).
 * - Debian's miniupnpd (nftables backend) serves UPnP-IGD (v2) and NAT-PMP/PCP on the LAN, secure
 *   mode (a client maps ports to its own address only), ports 1024-65535. startUpnp()/stopUpnp()
 *   switch it on and off; mappings() reads its lease file.
 * - miniupnpd refuses to forward anything when its WAN address is private or reserved, and the
 *   documentation ranges (203.0.113.0/24 …) are reserved in its list. As it advises, it is run
 *   with `ext_perform_stun=yes` against a tiny STUN responder on the WAN address, which tells it
 *   that address is its public one: exactly what a router with a public WAN address learns.
 *
 * Everything lives in namespaces: cleanup() stops the processes, deletes the private namespaces,
 * and removes the rules, the LAN bridge and ip_forward from the router namespace (which stays a
 * plain member of the test network). Leftovers of a killed run are removed by
 * cleanupStaleNetworks() (the private namespaces carry the creating pid in their name).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { NS_PREFIX, newTag, type TestNamespace, type TestNetwork } from './netns.js';

const execFileP = promisify(execFile);
const CMD_TIMEOUT_MS = 10_000;
/** The STUN responder's port on the WAN address. */
const STUN_PORT = 3478;
const TABLE = 'homerouter';

export interface HomeRouterOptions {
  network: TestNetwork;
  /** Which of the network's namespaces (0-based) becomes the router; its address is the WAN address. */
  wanIndex: number;
  /** The LAN, a /24 written A.B.C.0/24. Default 192.168.77.0/24: the router is .1, private host i (1-based) .(10+i). */
  lan?: string;
  /** Private namespaces behind the router (1..20). Default 1. */
  hosts?: number;
  /** Start miniupnpd at once. Default true. */
  upnp?: boolean;
}

/** A port mapping miniupnpd holds (a line of its lease file). */
export interface RouterMapping {
  protocol: 'TCP' | 'UDP';
  externalPort: number;
  internalIp: string;
  internalPort: number;
  /** When it expires (ms since the epoch), 0 for never; a renewal moves it forward. */
  expiresAt: number;
  description: string;
}

export interface HomeRouter {
  /** The router's namespace (the network member it was built on). */
  readonly name: string;
  readonly wanIp: string;
  /** The router's LAN address: the private namespaces' default gateway. */
  readonly lanIp: string;
  /** e.g. 192.168.77.0/24 */
  readonly lanSubnet: string;
  /** The private namespaces (no shaping on the LAN: delayMs is 0). */
  readonly hosts: readonly TestNamespace[];
  readonly upnpRunning: boolean;
  /** Start miniupnpd (and its STUN responder); resolves once it serves UPnP and NAT-PMP. Idempotent. */
  startUpnp(): Promise<void>;
  /** Stop miniupnpd (SIGTERM, then SIGKILL after 5 s). Mappings it made stay in the firewall, as after a daemon crash. Idempotent. */
  stopUpnp(): Promise<void>;
  /** The mappings in miniupnpd's lease file. */
  mappings(): RouterMapping[];
  /** miniupnpd's last output lines (for failure messages). */
  upnpLogs(): string[];
  /** Remove everything this router added. Idempotent; also runs at process exit. */
  cleanup(): Promise<void>;
}

async function run(cmd: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) return (await execFileP(cmd, args, { timeout: CMD_TIMEOUT_MS })).stdout;
  return new Promise((resolve, reject) => {
    const p = execFile(cmd, args, { timeout: CMD_TIMEOUT_MS }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
    p.stdin!.end(input);
  });
}

function parseLan(lan: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(lan);
  if (!m || m.slice(1, 4).some((x) => Number(x) > 255)) throw new TypeError(`lan must be a /24 written A.B.C.0/24, not ${JSON.stringify(lan)}`);
  return `${m[1]}.${m[2]}.${m[3]}`;
}

/**
 * A STUN binding responder (runs as `node -e` in the router namespace, self-contained): answers
 * every Binding Request with the sender's address as XOR-MAPPED-ADDRESS, from where it was asked.
 */
function stunResponder(dgram: typeof import('node:dgram'), cfg: { ip: string; port: number }): void {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (m, r) => {
    if (m.length < 20 || m.readUInt16BE(0) !== 0x0001) return;
    const res = Buffer.alloc(32);
    res.writeUInt16BE(0x0101, 0);
    res.writeUInt16BE(12, 2);
    m.copy(res, 4, 4, 20); // magic cookie + transaction id
    res.writeUInt16BE(0x0020, 20);
    res.writeUInt16BE(8, 22);
    res[25] = 1; // IPv4
    res.writeUInt16BE(r.port ^ 0x2112, 26);
    const cookie = [0x21, 0x12, 0xa4, 0x42];
    r.address.split('.').forEach((x, i) => (res[28 + i] = Number(x) ^ cookie[i]!));
    sock.send(res, r.port, r.address);
  });
  sock.on('error', (err) => {
    process.stderr.write(`stun responder: ${err.message}\n`);
    process.exit(1);
  });
  sock.bind(cfg.port, cfg.ip, () => process.stdout.write('ready\n'));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

/** Wait until `proc` prints a line matching `ready` (rejects when it exits or matches `fail` first, or after timeoutMs). */
function waitForLine(proc: ChildProcess, lines: string[], ready: RegExp, fail: RegExp | undefined, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`${what}: not ready in ${timeoutMs} ms\n${lines.slice(-15).join('\n')}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (fail?.test(line)) return done(new Error(`${what}: ${line}\n${lines.slice(-15).join('\n')}`));
        if (ready.test(line)) return done();
      }
    };
    const onExit = (code: number | null) => done(new Error(`${what}: exited (${code})\n${lines.slice(-15).join('\n')}`));
    const done = (err?: Error) => {
      clearTimeout(timer);
      proc.stdout?.off('data', onData);
      proc.stderr?.off('data', onData);
      proc.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('exit', onExit);
  });
}

function keepLines(proc: ChildProcess, lines: string[], skip?: RegExp): void {
  const onData = (d: Buffer) => {
    for (const line of d.toString().split('\n')) {
      if (!line || skip?.test(line)) continue;
      lines.push(line);
      if (lines.length > 300) lines.shift();
    }
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
}

async function stopProc(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

/**
 * Turn namespace `wanIndex` of `network` into a home router with `hosts` private namespaces
 * behind it (see the file comment). On failure, what was built is removed before the error
 * propagates. Needs root, iproute2, iptables, nft and miniupnpd (scripts/setup.sh test installs them).
 */
export async function createHomeRouter(options: HomeRouterOptions): Promise<HomeRouter> {
  const wan = options.network.namespaces[options.wanIndex];
  if (!wan) throw new RangeError(`the test network has no namespace ${options.wanIndex}`);
  const count = options.hosts ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 20) throw new TypeError('hosts must be an integer in 1..20');
  const lanPrefix = parseLan(options.lan ?? '192.168.77.0/24');
  const lanIp = `${lanPrefix}.1`;
  const router = wan.name;
  const tag = newTag();
  const dir = mkdtempSync(path.join(tmpdir(), 'cascade-router-'));
  const hosts: TestNamespace[] = Array.from({ length: count }, (_, i) => ({ name: `${NS_PREFIX}${tag}-r${options.wanIndex + 1}lan${i + 1}`, ip: `${lanPrefix}.${11 + i}`, delayMs: 0 }));
  const created: string[] = [];
  const state = {
    cleaned: false,
    masquerade: undefined as string[] | undefined,
    miniupnpd: undefined as ChildProcess | undefined,
    stun: undefined as ChildProcess | undefined,
    logs: [] as string[],
  };
  const netnsExec = (args: string[]) => ['netns', 'exec', router, ...args];

  const cleanupSync = () => {
    if (state.cleaned) return;
    state.cleaned = true;
    state.miniupnpd?.kill('SIGKILL');
    state.stun?.kill('SIGKILL');
    const quiet = (cmd: string, args: string[]) => {
      try {
        return execFileSync(cmd, args, { timeout: CMD_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      } catch {
        return '';
      }
    };
    for (const ns of created) {
      for (const p of quiet('ip', ['netns', 'pids', ns]).split('\n').map(Number)) if (p > 1 && p !== process.pid) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      quiet('ip', ['netns', 'delete', ns]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanupSync);

  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= removeAll());
  const removeAll = async () => {
    if (state.cleaned) return;
    process.off('exit', cleanupSync);
    await stopProc(state.miniupnpd);
    await stopProc(state.stun);
    state.cleaned = true;
    for (const ns of created) {
      const pids = (await run('ip', ['netns', 'pids', ns]).catch(() => '')).split('\n').map(Number);
      for (const p of pids) if (p > 1 && p !== process.pid) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      await run('ip', ['netns', 'delete', ns]).catch(() => undefined);
    }
    // The router namespace belongs to the test network: leave it as a plain member again.
    await run('ip', netnsExec(['nft', 'delete', 'table', 'inet', TABLE])).catch(() => undefined);
    if (state.masquerade) await run('ip', netnsExec(['iptables', '-t', 'nat', '-D', ...state.masquerade])).catch(() => undefined);
    await run('ip', ['-n', router, 'link', 'delete', 'lan0']).catch(() => undefined);
    await run('ip', netnsExec(['sysctl', '-qw', 'net.ipv4.ip_forward=0'])).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };

  const conf = path.join(dir, 'miniupnpd.conf');
  const leaseFile = path.join(dir, 'leases');

  const startUpnp = async () => {
    if (state.cleaned) throw new Error('home router already cleaned up');
    if (state.miniupnpd && state.miniupnpd.exitCode === null && state.miniupnpd.signalCode === null) return;
    if (!state.stun || state.stun.exitCode !== null || state.stun.signalCode !== null) {
      const code = `(${stunResponder.toString()})(require('node:dgram'), ${JSON.stringify({ ip: wan.ip, port: STUN_PORT })})`;
      const stun = spawn('ip', netnsExec([process.execPath, '-e', code]), { stdio: ['pipe', 'pipe', 'pipe'] });
      state.stun = stun;
      keepLines(stun, state.logs);
      await waitForLine(stun, state.logs, /^ready$/, undefined, 10_000, 'STUN responder');
    }
    const logs = state.logs;
    // -d: stay in the foreground (our child, killed by pid) and log to stderr. The per-rule
    // netlink callbacks are noise.
    const proc = spawn('ip', netnsExec(['miniupnpd', '-d', '-f', conf, '-P', path.join(dir, 'miniupnpd.pid')]), { stdio: ['ignore', 'pipe', 'pipe'] });
    state.miniupnpd = proc;
    keepLines(proc, logs, /table_cb|rule_cb|chain_cb/);
    try {
      await waitForLine(proc, logs, /Listening for NAT-PMP\/PCP traffic/, /Port forwarding is now disabled|Performing STUN failed|EXITING/, 20_000, 'miniupnpd');
    } catch (err) {
      await stopProc(proc);
      throw err;
    }
  };

  try {
    const addrs = JSON.parse(await run('ip', ['-n', router, '-j', '-4', 'addr', 'show'])) as { ifname: string; mtu: number; addr_info: { local: string }[] }[];
    const wanDev = addrs.find((l) => l.addr_info.some((a) => a.local === wan.ip));
    if (!wanDev) throw new Error(`no interface holds ${wan.ip} in ${router}`);

    await run('ip', ['-n', router, 'link', 'add', 'lan0', 'type', 'bridge']);
    await run('ip', ['-n', router, 'link', 'set', 'lan0', 'mtu', String(wanDev.mtu)]);
    await run('ip', ['-n', router, 'addr', 'add', `${lanIp}/24`, 'dev', 'lan0']);
    await run('ip', ['-n', router, 'link', 'set', 'lan0', 'up']);
    for (const [i, h] of hosts.entries()) {
      await run('ip', ['netns', 'add', h.name]);
      created.push(h.name);
      await run('ip', ['-n', h.name, 'link', 'set', 'lo', 'up']);
      // The WAN may be a VXLAN device (userspace shaping): keep the LAN's MTU within it.
      await run('ip', ['-n', router, 'link', 'add', `lan0p${i + 1}`, 'mtu', String(wanDev.mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(wanDev.mtu), 'netns', h.name]);
      await run('ip', ['-n', router, 'link', 'set', `lan0p${i + 1}`, 'master', 'lan0']);
      await run('ip', ['-n', router, 'link', 'set', `lan0p${i + 1}`, 'up']);
      await run('ip', ['-n', h.name, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', h.name, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', h.name, 'route', 'add', 'default', 'via', lanIp]);
    }
    await run('ip', netnsExec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']));
    const masquerade = ['POSTROUTING', '-s', `${lanPrefix}.0/24`, '-o', wanDev.ifname, '-j', 'MASQUERADE'];
    await run('ip', netnsExec(['iptables', '-t', 'nat', '-A', ...masquerade]));
    state.masquerade = masquerade;
    await run(
      'ip',
      netnsExec(['nft', '-f', '-']),
      `table inet ${TABLE} {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "${wanDev.ifname}" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`,
    );
    writeFileSync(
      conf,
      [
        `ext_ifname=${wanDev.ifname}`,
        'listening_ip=lan0',
        'http_port=0',
        'enable_upnp=yes',
        'enable_natpmp=yes',
        'secure_mode=yes',
        'system_uptime=yes',
        `uuid=${randomUUID()}`,
        `lease_file=${leaseFile}`,
        'ext_perform_stun=yes',
        `ext_stun_host=${wan.ip}`,
        `ext_stun_port=${STUN_PORT}`,
        `upnp_table_name=${TABLE}`,
        `upnp_nat_table_name=${TABLE}`,
        'upnp_forward_chain=miniupnpd',
        'upnp_nat_chain=prerouting_miniupnpd',
        'upnp_nat_postrouting_chain=postrouting_miniupnpd',
        `allow 1024-65535 ${lanPrefix}.0/24 1024-65535`,
        'deny 0-65535 0.0.0.0/0 0-65535',
        '',
      ].join('\n'),
    );
    if (options.upnp ?? true) await startUpnp();
  } catch (err) {
    await cleanup();
    throw err;
  }

  return {
    name: router,
    wanIp: wan.ip,
    lanIp,
    lanSubnet: `${lanPrefix}.0/24`,
    hosts,
    get upnpRunning() {
      const p = state.miniupnpd;
      return !!p && p.exitCode === null && p.signalCode === null;
    },
    startUpnp,
    async stopUpnp() {
      await stopProc(state.miniupnpd);
    },
    mappings() {
      let text = '';
      try {
        text = readFileSync(leaseFile, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [protocol, ext, ip, int, ts, ...desc] = line.split(':');
          return { protocol: protocol as 'TCP' | 'UDP', externalPort: Number(ext), internalIp: ip!, internalPort: Number(int), expiresAt: Number(ts) * 1000, description: desc.join(':') };
        });
    },
    upnpLogs: () => [...state.logs],
    cleanup,
  };
}
