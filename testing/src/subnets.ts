/**
 * Picking the /24 of a test network (netns.ts): one that collides with no address or route of
 * this host, random in 10.0.0.0/8 or the one asked for (e.g. a documentation range).
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

async function ip(args: string[]): Promise<string> {
  const { stdout } = await execFileP('ip', args, { timeout: 10_000 });
  return stdout;
}

function ipToInt(a: string): number {
  return a.split('.').reduce((n, x) => n * 256 + Number(x), 0);
}

/** Prefixes (addresses and routes) the host already uses, to keep the test subnet clear of them. */
async function usedPrefixes(): Promise<{ base: number; len: number }[]> {
  const text = (await ip(['-4', '-o', 'addr', 'show']).catch(() => '')) + (await ip(['-4', 'route', 'show', 'table', 'all']).catch(() => ''));
  const out: { base: number; len: number }[] = [];
  for (const m of text.matchAll(/(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:\/(\d{1,2}))?/g)) {
    const len = m[2] ? Number(m[2]) : 32;
    out.push({ base: ipToInt(m[1]!), len });
  }
  return out;
}

function overlaps(a: { base: number; len: number }, b: { base: number; len: number }): boolean {
  const len = Math.min(a.len, b.len);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((a.base & mask) >>> 0) === ((b.base & mask) >>> 0);
}

/** The three RFC 5737 documentation /24s: public-looking, routed nowhere. */
export const DOCUMENTATION_SUBNETS: readonly string[] = ['203.0.113.0/24', '198.51.100.0/24', '192.0.2.0/24'];

const isFree = (p: { base: number; len: number }, used: { base: number; len: number }[]) => !used.some((u) => u.base !== 0 && overlaps(p, u));

/**
 * The test subnet (`wanted`, or a random free 10.A.B.0/24) and a free 10.x.y.0/24 for the
 * underlay of the userspace mode, as their first three octets.
 */
export async function pickSubnets(wanted: string | readonly string[] | undefined): Promise<{ test: string; under: string }> {
  const used = await usedPrefixes();
  let test: string | undefined;
  if (wanted !== undefined) {
    const clashes: string[] = [];
    for (const w of typeof wanted === 'string' ? [wanted] : wanted) {
      const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(w);
      if (!m || m.slice(1, 4).some((x) => Number(x) > 255)) throw new TypeError(`subnet must be a /24 written A.B.C.0/24, not ${JSON.stringify(w)}`);
      const clash = used.find((u) => u.base !== 0 && overlaps({ base: ipToInt(`${m[1]}.${m[2]}.${m[3]}.0`), len: 24 }, u));
      if (!clash) {
        test = `${m[1]}.${m[2]}.${m[3]}`;
        break;
      }
      clashes.push(`${w} overlaps ${intToIp(clash.base)}/${clash.len}`);
    }
    if (test === undefined) throw new Error(`no free test subnet: ${clashes.join('; ')} (already used on this host)`);
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const a = randomInt(64, 224);
    const b = randomInt(0, 256);
    if (test === undefined) {
      // The historical layout: 10.A.B.0/24 and its underlay 10.A.(B^128).0/24.
      const mine = [`10.${a}.${b}`, `10.${a}.${b ^ 128}`];
      if (mine.every((p) => isFree({ base: ipToInt(`${p}.0`), len: 24 }, used))) return { test: mine[0]!, under: mine[1]! };
    } else if (isFree({ base: ipToInt(`10.${a}.${b}.0`), len: 24 }, used)) {
      return { test, under: `10.${a}.${b}` };
    }
  }
  throw new Error('no free 10.x.y.0/24 test subnet found');
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}
