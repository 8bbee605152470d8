/**
 * The userspace delay switch of the test networks (netns.ts, shaping 'userspace'), for kernels
 * built without sch_netem: a small Node process in the hub namespace that switches the members'
 * VXLAN frames (MAC learning), holds each one for the links' delays, and drops/rate-limits as
 * asked. It also recomputes inner TCP/UDP checksums, which the sender left to offload.
 */
import type dgramModule from 'node:dgram';

/**
 * VXLAN network id of the shaping probe, and UDP port of the userspace mode (each namespace has
 * its own port space). A network's own VXLAN devices take an id of their own (networkVni()):
 * its root-namespace device shares the root's port with every other network running at once.
 */
export const VNI = 42;
export const VXLAN_PORT = 4789;

/** A VXLAN id for one test network: two networks at once (two test runs) must not share one in the root namespace. */
export function networkVni(random: (max: number) => number): number {
  return 1000 + random(16_000_000);
}

/** One member as the switch sees it: its underlay address and its link's shaping. */
export interface SwitchPeer {
  ip: string;
  delayMs: number;
  lossPercent: number;
  lossUdpOnly: boolean;
  rateKbit: number;
}

/**
 * The userspace delay switch (runs alone in the hub namespace as `node -e`, so it must not
 * reference anything outside itself). VXLAN frames from member k arrive from its underlay
 * address; each is forwarded to the member owning the destination MAC (or flooded), after
 * delay(src) + delay(dst), through one FIFO per (src, dst) pair so a pair never reorders.
 */
export function delaySwitch(dgram: typeof dgramModule, cfg: { port: number; peers: SwitchPeer[] }): void {
  const sock = dgram.createSocket('udp4');
  const peers = cfg.peers;
  const byIp = new Map(peers.map((p, i) => [p.ip, i]));
  const macs = new Map<string, number>();
  const upFree = peers.map(() => 0);
  const downFree = peers.map(() => 0);
  const queues = new Map<string, { at: number; dst: number; msg: Buffer }[]>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const MAX_QUEUE = 5000;
  const MAX_BACKLOG_MS = 2000;

  const sum16 = (b: Buffer, start: number, end: number, acc: number) => {
    let i = start;
    for (; i + 1 < end; i += 2) acc += b.readUInt16BE(i);
    if (i < end) acc += b[i]! << 8;
    return acc;
  };
  /** Where the inner IPv4 header of a VXLAN frame starts (after Ethernet and a VLAN tag), or -1. */
  const ipv4At = (m: Buffer) => {
    let o = 8 + 12;
    if (m.length < o + 2) return -1;
    let type = m.readUInt16BE(o);
    o += 2;
    if (type === 0x8100 && m.length >= o + 4) {
      type = m.readUInt16BE(o + 2);
      o += 4;
    }
    return type === 0x0800 && m.length >= o + 20 ? o : -1;
  };
  /** The sender computed no inner L4 checksum (offload to a NIC that does not exist): do it. */
  const fixChecksum = (m: Buffer) => {
    const o = ipv4At(m);
    if (o < 0) return;
    const ihl = (m[o]! & 0x0f) * 4;
    const total = m.readUInt16BE(o + 2);
    const proto = m[o + 9]!;
    if ((m.readUInt16BE(o + 6) & 0x3fff) !== 0) return; // a fragment: no L4 header to fix
    const l4 = o + ihl;
    const end = o + total;
    const off = proto === 6 ? 16 : proto === 17 ? 6 : -1;
    if (off < 0 || end > m.length || l4 + off + 2 > end) return;
    m.writeUInt16BE(0, l4 + off);
    let acc = sum16(m, l4, end, sum16(m, o + 12, o + 20, 0) + proto + (end - l4));
    while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
    let c = ~acc & 0xffff;
    if (proto === 17 && c === 0) c = 0xffff;
    m.writeUInt16BE(c, l4 + off);
  };
  const ser = (len: number, k: number) => (peers[k]!.rateKbit > 0 ? (len * 8) / peers[k]!.rateKbit : 0); // ms (kbit/s = bit/ms)
  const isUdp = (m: Buffer) => {
    const o = ipv4At(m);
    return o >= 0 && m[o + 9] === 17;
  };
  const lost = (k: number, m: Buffer) =>
    peers[k]!.lossPercent > 0 && (!peers[k]!.lossUdpOnly || isUdp(m)) && Math.random() * 100 < peers[k]!.lossPercent;

  const drain = (key: string) => {
    timers.delete(key);
    const q = queues.get(key)!;
    const now = performance.now();
    while (q.length > 0 && q[0]!.at <= now + 0.5) {
      const { dst, msg } = q.shift()!;
      sock.send(msg, cfg.port, peers[dst]!.ip);
    }
    if (q.length > 0) timers.set(key, setTimeout(() => drain(key), Math.max(0, q[0]!.at - now)));
  };

  sock.on('message', (msg, rinfo) => {
    const src = byIp.get(rinfo.address);
    if (src === undefined || msg.length < 8 + 14) return;
    fixChecksum(msg);
    const dstMac = msg.toString('hex', 8, 14);
    macs.set(msg.toString('hex', 14, 20), src);
    const known = (msg[8]! & 1) === 0 ? macs.get(dstMac) : undefined;
    const targets = known !== undefined ? [known] : peers.map((_, i) => i);
    const now = performance.now();
    if (lost(src, msg)) return;
    let t = Math.max(now, upFree[src]!) + ser(msg.length, src);
    if (t - now > MAX_BACKLOG_MS) return; // the uplink's buffer is full
    upFree[src] = t;
    t += peers[src]!.delayMs;
    for (const dst of targets) {
      if (dst === src || lost(dst, msg)) continue;
      const t2 = Math.max(t, downFree[dst]!) + ser(msg.length, dst);
      if (t2 - now > MAX_BACKLOG_MS) continue;
      downFree[dst] = t2;
      const key = `${src}>${dst}`;
      let q = queues.get(key);
      if (!q) queues.set(key, (q = []));
      if (q.length >= MAX_QUEUE) continue;
      q.push({ at: t2 + peers[dst]!.delayMs, dst, msg });
      if (!timers.has(key)) timers.set(key, setTimeout(() => drain(key), Math.max(0, q[0]!.at - now)));
    }
  });
  sock.on('error', (err) => {
    process.stderr.write(`delay switch: ${err.message}\n`);
    process.exit(1);
  });
  sock.bind(cfg.port, () => process.stdout.write('ready\n'));
  // Our parent holds our stdin: when it goes away (even by SIGKILL), so do we.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
