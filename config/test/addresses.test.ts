import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { announcedAddress, loadConfig, publicHttpUrl } from '../src/index.js';

const interfaces = {
  lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }, { address: '::1', family: 'IPv6', internal: true }],
  eth0: [
    { address: '10.1.2.3', family: 'IPv4', internal: false },
    { address: 'fe80::1', family: 'IPv6', internal: false },
    { address: '2001:db8::7', family: 'IPv6', internal: false },
  ],
} as unknown as ReturnType<typeof os.networkInterfaces>;

describe('announcedAddress()', () => {
  afterEach(() => vi.restoreAllMocks());

  it('uses the configured announced address, else the listen address', () => {
    expect(announcedAddress({ ip: '0.0.0.0', announcedIp: '203.0.113.9' })).toBe('203.0.113.9');
    expect(announcedAddress({ ip: '10.9.9.9', announcedIp: '' })).toBe('10.9.9.9');
  });

  it('replaces a wildcard by the first external address of the same family (IPv4 and IPv6)', () => {
    vi.spyOn(os, 'networkInterfaces').mockReturnValue(interfaces);
    expect(announcedAddress({ ip: '0.0.0.0', announcedIp: '' })).toBe('10.1.2.3');
    expect(announcedAddress({ ip: '::', announcedIp: '' })).toBe('2001:db8::7');
  });

  it('falls back to loopback only when the host has nothing else', () => {
    vi.spyOn(os, 'networkInterfaces').mockReturnValue({ lo: interfaces.lo! });
    expect(announcedAddress({ ip: '0.0.0.0', announcedIp: '' })).toBe('127.0.0.1');
  });
});

describe('publicHttpUrl()', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prefers http.publicUrl, else the announced media address and the port', () => {
    vi.spyOn(os, 'networkInterfaces').mockReturnValue(interfaces);
    expect(publicHttpUrl(loadConfig({ env: { CASCADE_HTTP_PUBLIC_URL: 'https://live.example.org/' } }))).toBe('https://live.example.org');
    expect(publicHttpUrl(loadConfig({ env: {} }), 8080)).toBe('http://10.1.2.3:8080');
    const v6 = loadConfig({ env: { CASCADE_MEDIASOUP_LISTEN_IPS: '[{"ip":"::","announcedIp":""}]' } });
    expect(publicHttpUrl(v6, 8080)).toBe('http://[2001:db8::7]:8080');
  });
});
