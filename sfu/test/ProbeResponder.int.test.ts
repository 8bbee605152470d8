import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@cascade/protocol';
import { ProbeResponder } from '../src/control/ProbeResponder.js';

/** Hold these UDP ports on loopback, as another program would. */
async function holdPorts(ports: number[]): Promise<dgram.Socket[]> {
  return Promise.all(
    ports.map(
      (port) =>
        new Promise<dgram.Socket>((resolve, reject) => {
          const s = dgram.createSocket('udp4');
          s.once('error', reject);
          s.bind(port, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
}

describe('ProbeResponder', () => {
  const open: Array<{ close(): void }> = [];
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  it('listens inside the media port range and hands on the nonce of a probe', async () => {
    const nonces: string[] = [];
    const r = await ProbeResponder.bind('127.0.0.1', { min: 47100, max: 47109 }, (n) => nonces.push(n), { logger: silentLogger });
    open.push(r);
    expect(r.port).toBeGreaterThanOrEqual(47100);
    expect(r.port).toBeLessThanOrEqual(47109);
    const client = dgram.createSocket('udp4');
    open.push(client);
    client.send('CASCADE-PROBE abc123', r.port, '127.0.0.1');
    for (let i = 0; i < 100 && nonces.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    expect(nonces).toEqual(['abc123']);
  });

  it('skips ports already taken and fails clearly when the whole range is taken', async () => {
    const held = await holdPorts([47120, 47121]);
    open.push(...held);
    const r = await ProbeResponder.bind('127.0.0.1', { min: 47120, max: 47122 }, () => {}, { logger: silentLogger });
    open.push(r);
    expect(r.port).toBe(47122);
    await expect(ProbeResponder.bind('127.0.0.1', { min: 47120, max: 47122 }, () => {}, { logger: silentLogger })).rejects.toThrow(
      /reachability probe on 127\.0\.0\.1, UDP ports 47120-47122/,
    );
  });
});
