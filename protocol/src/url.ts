import { PROTOCOL_VERSION } from './version.js';

/** `http://host:port` (or ws://) plus a path → the WebSocket URL carrying the protocol version. */
export function signallingUrl(base: string, path: string): string {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
  u.pathname = path;
  u.search = '';
  u.searchParams.set('v', String(PROTOCOL_VERSION));
  return u.toString();
}
