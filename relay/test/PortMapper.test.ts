import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '@cascade/protocol';
import { PortMapperImpl, PortMappingError, createPortMapper, formatPorts, type MappingMethod, type RouterClient, type RouterFinder } from '../src/index.js';

/** A router in memory: what it maps, what it refuses, what garbage it says. */
class FakeRouter implements RouterClient {
  readonly gateway = '192.168.1.1';
  readonly internalIp = '192.168.1.23';
  readonly table = new Map<string, { externalPort: number; lease: number }>();
  readonly calls: string[] = [];
  externalAddress = '198.51.100.7';
  refuse = new Set<string>();
  offerOtherPort = new Set<string>();
  dead = false;
  closed = 0;
  constructor(readonly method: MappingMethod) {}
  async externalIp() {
    this.calls.push('externalIp');
    if (this.dead) throw PortMappingError.noAnswer('dead');
    return this.externalAddress;
  }
  async map(m: { protocol: 'udp' | 'tcp'; internalPort: number; externalPort: number; leaseSeconds: number }) {
    const key = `${m.protocol}:${m.internalPort}`;
    this.calls.push(`map ${key}`);
    if (this.dead) throw PortMappingError.noAnswer('dead');
    if (this.refuse.has(key)) throw new PortMappingError('refused', `refused ${key}`);
    const externalPort = this.offerOtherPort.has(key) ? m.externalPort + 1 : m.externalPort;
    this.table.set(key, { externalPort, lease: m.leaseSeconds });
    return { externalPort, leaseSeconds: m.leaseSeconds };
  }
  async unmap(m: { protocol: 'udp' | 'tcp'; internalPort: number }) {
    this.calls.push(`unmap ${m.protocol}:${m.internalPort}`);
    if (this.dead) throw PortMappingError.noAnswer('dead');
    this.table.delete(`${m.protocol}:${m.internalPort}`);
  }
  close() {
    this.closed++;
  }
}

function finder(routers: Partial<Record<MappingMethod, FakeRouter | Error | undefined>>): RouterFinder & { calls: MappingMethod[] } {
  const calls: MappingMethod[] = [];
  const find: RouterFinder = async (method) => {
    calls.push(method);
    const r = routers[method];
    if (r instanceof Error) throw r;
    return r;
  };
  return Object.assign(find, { calls });
}

const fixedRetry = (ms: number) => ({ nextRetryDelayMs: () => ms });

describe('PortMapper', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('maps the media port (UDP and TCP) and the pipe ports through UPnP and reports the external address', async () => {
    const upnp = new FakeRouter('upnp');
    const m = await createPortMapper({ mediaPort: 40000, pipePorts: { min: 40100, max: 40103 } }, { logger: silentLogger, findRouter: finder({ upnp }) });
    expect(m.status).toMatchObject({ state: 'mapped', method: 'upnp', gateway: '192.168.1.1', internalIp: '192.168.1.23', externalIp: '198.51.100.7', missing: [], behindAnotherNat: false });
    expect([...upnp.table.keys()].sort()).toEqual(['tcp:40000', 'udp:40000', 'udp:40100', 'udp:40101', 'udp:40102', 'udp:40103']);
    expect(m.status.message).toContain('opened UDP and TCP 40000 and UDP 40100-40103');
    await m.close();
  });

  it('falls back to NAT-PMP when no UPnP device answers', async () => {
    const pmp = new FakeRouter('nat-pmp');
    const f = finder({ upnp: undefined, 'nat-pmp': pmp });
    const m = await createPortMapper({ mediaPort: 40000 }, { logger: silentLogger, findRouter: f });
    expect(f.calls).toEqual(['upnp', 'nat-pmp']);
    expect(m.status).toMatchObject({ state: 'mapped', method: 'nat-pmp' });
    await m.close();
  });

  it('renews at half the lease, and says "renewed" (not "mapped") when nothing changed', async () => {
    const upnp = new FakeRouter('upnp');
    const m = await createPortMapper({ mediaPort: 40000, leaseSeconds: 60 }, { logger: silentLogger, findRouter: finder({ upnp }) });
    const renewed = vi.fn();
    const mapped = vi.fn();
    m.on('renewed', renewed);
    m.on('mapped', mapped);
    upnp.calls.length = 0;
    await vi.advanceTimersByTimeAsync(29_000);
    expect(upnp.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(upnp.calls).toEqual(['externalIp', 'map udp:40000', 'map tcp:40000']);
    expect(renewed).toHaveBeenCalledTimes(1);
    expect(mapped).not.toHaveBeenCalled();
    // A new internet address is news: "mapped" again.
    upnp.externalAddress = '198.51.100.8';
    await vi.advanceTimersByTimeAsync(31_000);
    expect(mapped).toHaveBeenCalledTimes(1);
    expect(m.status.externalIp).toBe('198.51.100.8');
    await m.close();
  });

  it('with no router at all: plain words naming the ports and this computer, retries in the background, then maps', async () => {
    const pmp = new FakeRouter('nat-pmp');
    pmp.dead = true;
    const f = finder({ upnp: undefined, 'nat-pmp': pmp });
    const m = await createPortMapper({ mediaPort: 40000, pipePorts: { min: 40100, max: 40109 }, retryPolicy: fixedRetry(5000) }, { logger: silentLogger, findRouter: f });
    expect(m.status.state).toBe('failed');
    expect(m.status.problem?.reason).toBe('no-answer');
    expect(m.status.message).toBe(
      "could not open this relay's ports on your router automatically (no UPnP or NAT-PMP answer from 192.168.1.1; it may have them switched off). " +
        'Forward these ports on your router to this computer (192.168.1.23): UDP and TCP 40000 (media), UDP 40100-40109 (pipes between relays). Trying again in 5 s.',
    );
    const failed = vi.fn();
    m.on('failed', failed);
    await vi.advanceTimersByTimeAsync(5000);
    expect(failed).toHaveBeenCalledTimes(1);
    expect(m.status.failedAttempts).toBe(2);
    pmp.dead = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(m.status).toMatchObject({ state: 'mapped', method: 'nat-pmp', failedAttempts: 0 });
    await m.close();
  });

  it('a policy that gives up stops retrying and says so', async () => {
    const m = await createPortMapper({ mediaPort: 40000, retryPolicy: { nextRetryDelayMs: () => null } }, { logger: silentLogger, findRouter: finder({}) });
    expect(m.status.state).toBe('failed');
    expect(m.status.nextAttemptAt).toBeUndefined();
    expect(m.status.message).toMatch(/Not trying again\.$/);
    await m.close();
  });

  it('keeps the media mapping when a pipe port is refused, and names the missing pipe ports', async () => {
    const upnp = new FakeRouter('upnp');
    upnp.refuse.add('udp:40101');
    const m = await createPortMapper({ mediaPort: 40000, pipePorts: { min: 40100, max: 40102 } }, { logger: silentLogger, findRouter: finder({ upnp }) });
    expect(m.status.state).toBe('mapped');
    expect(m.status.missing).toEqual([{ protocol: 'udp', purpose: 'pipe', port: 40101 }]);
    expect(m.status.message).toContain('It did not open UDP 40101 (pipes between relays): forward those to 192.168.1.23 by hand');
    await m.close();
  });

  it('a media port the router maps elsewhere is useless: undone, reported as a conflict, NAT-PMP tried next', async () => {
    const upnp = new FakeRouter('upnp');
    upnp.offerOtherPort.add('tcp:40000');
    const pmp = new FakeRouter('nat-pmp');
    const m = await createPortMapper({ mediaPort: 40000 }, { logger: silentLogger, findRouter: finder({ upnp, 'nat-pmp': pmp }) });
    expect(upnp.table.size).toBe(0);
    expect(upnp.calls).toContain('unmap tcp:40000');
    expect(m.status).toMatchObject({ state: 'mapped', method: 'nat-pmp' });
    await m.close();
  });

  it('garbage from the router never throws: every fault becomes a status', async () => {
    const upnp = new FakeRouter('upnp');
    upnp.externalIp = async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'NewExternalIPAddress')");
    };
    const f: RouterFinder = async (method) => {
      if (method === 'nat-pmp') throw new RangeError('offset out of range');
      return upnp;
    };
    const m = await createPortMapper({ mediaPort: 40000, retryPolicy: fixedRetry(1000) }, { logger: silentLogger, findRouter: f });
    expect(m.status.state).toBe('failed');
    expect(m.status.problem?.reason).toBe('malformed');
    await vi.advanceTimersByTimeAsync(3000);
    expect(m.status.failedAttempts).toBe(4);
    await m.close();
  });

  it('an address of the provider NAT (CGNAT) is flagged in plain words', async () => {
    const upnp = new FakeRouter('upnp');
    upnp.externalAddress = '100.64.12.9';
    const m = await createPortMapper({ mediaPort: 40000 }, { logger: silentLogger, findRouter: finder({ upnp }) });
    expect(m.status.behindAnotherNat).toBe(true);
    expect(m.status.message).toContain('your provider puts another NAT in front of it');
    await m.close();
  });

  it('enabled: false (--no-port-mapping) asks nobody and says what to forward', async () => {
    const f = finder({ upnp: new FakeRouter('upnp') });
    const m = await createPortMapper({ enabled: false, mediaPort: 40000 }, { logger: silentLogger, findRouter: f });
    expect(f.calls).toEqual([]);
    expect(m.status.state).toBe('disabled');
    expect(m.status.message).toBe('port mapping is off: if this computer is behind a router, forward UDP and TCP 40000 (media) to it by hand');
    await m.close();
  });

  it('close() removes the mappings; twice gives one observer close', async () => {
    const upnp = new FakeRouter('upnp');
    const m = await createPortMapper({ mediaPort: 40000, pipePorts: { min: 40100, max: 40100 } }, { logger: silentLogger, findRouter: finder({ upnp }) });
    const close = vi.fn();
    const unmapped = vi.fn();
    m.observer.on('close', close);
    m.observer.on('unmapped', unmapped);
    await Promise.all([m.close(), m.close()]);
    await m.close();
    expect(upnp.table.size).toBe(0);
    expect(close).toHaveBeenCalledTimes(1);
    expect(unmapped).toHaveBeenCalledTimes(1);
    expect(m.closed).toBe(true);
    expect(m.status.state).toBe('closed');
    // No renewal after close.
    upnp.calls.length = 0;
    await vi.advanceTimersByTimeAsync(4_000_000);
    expect(upnp.calls).toEqual([]);
  });

  it('close() during the first attempt removes what that attempt mapped', async () => {
    const upnp = new FakeRouter('upnp');
    const m = new PortMapperImpl({ mediaPort: 40000 }, { logger: silentLogger, findRouter: finder({ upnp }) });
    const first = m.start();
    const closing = m.close();
    await first;
    await closing;
    expect(upnp.table.size).toBe(0);
  });

  it('close() with a router that no longer answers still finishes', async () => {
    const upnp = new FakeRouter('upnp');
    const m = await createPortMapper({ mediaPort: 40000 }, { logger: silentLogger, findRouter: finder({ upnp }) });
    upnp.unmap = () => new Promise(() => undefined); // hangs for ever
    const closing = m.close();
    await vi.advanceTimersByTimeAsync(10_000);
    await closing;
    expect(m.status.state).toBe('closed');
  });

  it('wrong options throw TypeError', () => {
    expect(() => new PortMapperImpl({ mediaPort: 0 }, { logger: silentLogger })).toThrow(TypeError);
    expect(() => new PortMapperImpl({ mediaPort: 40000, pipePorts: { min: 40100, max: 40200 } }, { logger: silentLogger })).toThrow(TypeError);
    expect(() => new PortMapperImpl({ mediaPort: 40000, leaseSeconds: 0 }, { logger: silentLogger })).toThrow(TypeError);
  });

  it('formatPorts() compresses runs', () => {
    expect(formatPorts([40000])).toBe('40000');
    expect(formatPorts([40103, 40100, 40101, 40102, 40105])).toBe('40100-40103, 40105');
  });
});
