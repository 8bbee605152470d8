import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, issueToken, startServer, type NodeProcess } from '@cascade/testing';

/**
 * An origin that listens on IPv4 and IPv6 (mediasoup.listenIps with one address of each family)
 * offers candidates of both families to broadcasters and viewers, each with its announced address.
 */
const hasIpv6Loopback = Object.values(os.networkInterfaces()).some((l) => l?.some((a) => a.internal && a.family === 'IPv6'));
let origin: NodeProcess;

describe.skipIf(!hasIpv6Loopback)('dual stack', () => {
  beforeAll(async () => {
    origin = await startServer({
      env: { CASCADE_MEDIASOUP_LISTEN_IPS: JSON.stringify([{ ip: '127.0.0.1', announcedIp: '127.0.0.1' }, { ip: '::1', announcedIp: '::1' }]) },
    });
  });
  afterAll(async () => {
    await origin?.stop();
  });

  it('the broadcaster and the viewer get an IPv4 and an IPv6 candidate', async () => {
    const pub = await RawClient.open(origin.url);
    const published = await pub.request('stream.publish', { token: issueToken({ scope: ['broadcast'], sub: 'dual' }) });
    const send = await pub.request('transport.create', { direction: 'send' });
    const viewer = await RawClient.open(origin.url);
    await viewer.request('stream.watch', { streamId: published.data!.streamId });
    const recv = await viewer.request('transport.create', { direction: 'recv' });
    for (const t of [send, recv]) {
      const ips = new Set((t.data!.iceCandidates as { ip: string }[]).map((c) => c.ip));
      expect(ips).toEqual(new Set(['127.0.0.1', '::1']));
    }
    pub.close();
    viewer.close();
  });
});

if (!hasIpv6Loopback) console.warn('dual stack test skipped: this host has no IPv6 loopback (::1)');
