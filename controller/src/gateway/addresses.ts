import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** Addresses no relay may send media from on the public internet (RFC 6890's special-purpose blocks that matter here). */
const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) NON_PUBLIC.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b:1::', 48]] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

/** `::ffff:10.0.0.1` → `10.0.0.1`; anything else unchanged. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/**
 * A public unicast address: not private, loopback, link-local, CGNAT, multicast, reserved or
 * unspecified. (The documentation ranges count as public: they route nowhere on the internet,
 * and tests use them as public-looking addresses.)
 */
export function isPublicUnicast(ip: string): boolean {
  const a = normalizeIp(ip);
  const family = isIP(a);
  if (family === 0) return false;
  if (a === '255.255.255.255') return false;
  return !NON_PUBLIC.check(a, family === 4 ? 'ipv4' : 'ipv6');
}

/** Any unicast address a host can have (private and loopback included). */
export function isUnicast(ip: string): boolean {
  const a = normalizeIp(ip);
  const family = isIP(a);
  if (family === 0) return false;
  if (family === 4) return !a.startsWith('0.') && a !== '255.255.255.255' && !(Number(a.split('.')[0]) >= 224);
  return a !== '::' && !a.toLowerCase().startsWith('ff');
}

/**
 * The address a request comes from: the peer's, or, when the peer is one of the trusted
 * proxies (the TLS terminator in front), the last address X-Forwarded-For names that is not a
 * trusted proxy itself.
 */
export function clientAddress(req: IncomingMessage, trustProxy: readonly string[]): string {
  const peer = normalizeIp(req.socket.remoteAddress ?? '');
  const trusted = new Set(trustProxy.map(normalizeIp));
  if (!trusted.has(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const list = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map((s) => normalizeIp(s.trim())).filter(Boolean);
  for (let i = list.length - 1; i >= 0; i--) {
    if (!trusted.has(list[i]!) && isIP(list[i]!)) return list[i]!;
  }
  return peer;
}
