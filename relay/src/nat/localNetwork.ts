/**
 * What the port mapper needs to know about this machine's network: the default gateway (the
 * home router, where NAT-PMP is asked) and our address towards a host (what the router sees).
 * Linux reads /proc/net/route; macOS and Windows ask their `route` command (not testable here).
 */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(cmd, args, { timeout: 3000, windowsHide: true }, (err, stdout) => resolve(err ? '' : stdout)));
}

/** /proc/net/route: the default route's gateway, little-endian hex. */
export function parseProcNetRoute(text: string): string | undefined {
  for (const line of text.split('\n').slice(1)) {
    const [, dest, gw, flags] = line.trim().split(/\s+/);
    if (dest !== '00000000' || !gw || !flags) continue;
    if ((parseInt(flags, 16) & 0x2) === 0) continue; // RTF_GATEWAY
    const n = parseInt(gw, 16);
    if (!Number.isFinite(n) || n === 0) continue;
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
  }
  return undefined;
}

/** macOS `route -n get default`: "gateway: 192.168.1.1". */
export function parseRouteGet(text: string): string | undefined {
  const m = /^\s*gateway:\s*(\S+)/m.exec(text);
  return m && isIPv4(m[1]!) ? m[1] : undefined;
}

/** Windows `route print -4 0.0.0.0`: "0.0.0.0  0.0.0.0  192.168.1.1  192.168.1.23  25". */
export function parseRoutePrint(text: string): string | undefined {
  for (const m of text.matchAll(/^\s*0\.0\.0\.0\s+0\.0\.0\.0\s+(\d+\.\d+\.\d+\.\d+)\s+/gm)) if (isIPv4(m[1]!)) return m[1];
  return undefined;
}

/** This machine's default IPv4 gateway, or undefined. Never throws. */
export async function defaultGateway(platform: NodeJS.Platform = process.platform): Promise<string | undefined> {
  try {
    if (platform === 'linux' || platform === 'android') return parseProcNetRoute(await readFile('/proc/net/route', 'utf8'));
    if (platform === 'darwin' || platform.endsWith('bsd')) return parseRouteGet(await run('route', ['-n', 'get', 'default']));
    if (platform === 'win32') return parseRoutePrint(await run('route', ['print', '-4', '0.0.0.0']));
  } catch {
    // no /proc, no route command: no gateway known
  }
  return undefined;
}

/** Our address on the way to `host` (a connected UDP socket sends nothing), or undefined. Never throws. */
export function localAddressTowards(host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (ip?: string) => {
      try {
        s.close();
      } catch {
        // closed
      }
      resolve(ip);
    };
    s.once('error', () => done());
    try {
      s.connect(9, host, () => {
        try {
          const a = s.address().address;
          done(isIPv4(a) && a !== '0.0.0.0' ? a : undefined);
        } catch {
          done();
        }
      });
    } catch {
      done();
    }
  });
}

/** Private (RFC 1918), shared (RFC 6598, CGNAT), loopback or link-local: not reachable from the internet. */
export function isNonPublicIPv4(ip: string): boolean {
  if (!isIPv4(ip)) return true;
  const [a, b] = ip.split('.').map(Number) as [number, number];
  return a === 10 || a === 127 || a === 0 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b < 128) || (a === 169 && b === 254);
}
