import os from 'node:os';
import type { CascadeConfig } from './schema.js';

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * The address to announce for a listen IP. A wildcard listen address is replaced by the first
 * external address of the host of the same family, so that what clients receive is never a
 * hard-coded localhost; loopback is used only when the host has nothing else.
 */
export function announcedAddress(listen: { ip: string; announcedIp: string }): string {
  if (listen.announcedIp) return listen.announcedIp;
  if (!WILDCARDS.has(listen.ip)) return listen.ip;
  const family = listen.ip === '::' ? 'IPv6' : 'IPv4';
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === family && !a.internal && !(family === 'IPv6' && a.address.startsWith('fe80'))) return a.address;
    }
  }
  return family === 'IPv6' ? '::1' : '127.0.0.1';
}

/** The URL other hosts use to reach this process's HTTP/WebSocket server. */
export function publicHttpUrl(config: Pick<CascadeConfig, 'http' | 'mediasoup'>, port = config.http.port): string {
  if (config.http.publicUrl) return config.http.publicUrl.replace(/\/$/, '');
  const host = WILDCARDS.has(config.http.host) ? announcedAddress(config.mediasoup.listenIps[0]!) : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
