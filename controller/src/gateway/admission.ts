import { isIP } from 'node:net';
import { CascadeError, type NodeCapacity } from '@cascade/protocol';
import { isPublicUnicast, isUnicast, normalizeIp } from './addresses.js';

/** No relay uploads more than this (kbit/s): 10 Gbit/s. */
export const MAX_UP_KBPS = 10_000_000;

/**
 * A declaration no real relay makes is refused at registration: no upload at all, more upload
 * than any link has, more viewers than its upload could carry one copy to.
 */
export function checkDeclaredCapacity(c: NodeCapacity, kind: 'origin' | 'relay'): void {
  if (kind === 'origin') return;
  if (!(c.upKbps > 0)) throw new CascadeError('CASCADE_ERR_RELAY_INVALID_CAPACITY', 'upload (upKbps) must be above 0');
  if (c.upKbps > MAX_UP_KBPS) throw new CascadeError('CASCADE_ERR_RELAY_INVALID_CAPACITY', `upload ${c.upKbps} kbit/s is more than any link (at most ${MAX_UP_KBPS})`);
  if (!(c.downKbps > 0)) throw new CascadeError('CASCADE_ERR_RELAY_INVALID_CAPACITY', 'download (downKbps) must be above 0');
  // 100 kbit/s per copy is below any video viewer: more viewers than that cannot be real.
  if (c.maxViewers + c.maxChildren > c.upKbps / 100 + 1) {
    throw new CascadeError('CASCADE_ERR_RELAY_INVALID_CAPACITY', `${c.maxViewers} viewers and ${c.maxChildren} children do not fit in ${c.upKbps} kbit/s`);
  }
}

export type AddressPolicy = 'public' | 'any';

/**
 * The media address a node may announce: an IP literal (never a name: the controller resolves
 * nothing a relay chooses), unicast, and under the public policy a public address that is the
 * one its control connection comes from, so that probes and pipes go to the relay itself and
 * never to a third party it names.
 */
export function checkMediaAddress(mediaIp: string, observed: string, policy: AddressPolicy): string {
  const ip = normalizeIp(mediaIp);
  if (isIP(ip) === 0) throw new CascadeError('CASCADE_ERR_RELAY_ADDRESS', `${mediaIp.slice(0, 64)} is not an IP address`);
  if (!isUnicast(ip)) throw new CascadeError('CASCADE_ERR_RELAY_ADDRESS', `${ip} is not a unicast address`);
  if (policy === 'public') {
    if (!isPublicUnicast(ip)) throw new CascadeError('CASCADE_ERR_RELAY_ADDRESS', `${ip} is not a public address (the operator allows only public ones)`);
    if (ip !== normalizeIp(observed)) {
      throw new CascadeError('CASCADE_ERR_RELAY_ADDRESS', `${ip} is not the address this relay connects from (${normalizeIp(observed)})`);
    }
  }
  return ip;
}
