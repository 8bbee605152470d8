import { afterEach, describe, expect, it, vi } from 'vitest';
import { channelPair, InvalidStateError, silentLogger } from '@cascade/protocol';
import { defaultWorkerBin } from '@cascade/config';
import { TicketVerifier } from '../src/auth/TicketVerifier.js';
import { MediaNode, type MediaNodeOptions } from '../src/MediaNode.js';
import { alive, closePool, killWorker, trackPool } from './mediaFixtures.js';

function options(numWorkers: number): MediaNodeOptions {
  return {
    id: 'node-under-test',
    kind: 'relay',
    listenIps: [{ ip: '127.0.0.1', announcedIp: '127.0.0.1' }],
    iceServers: [],
    mediasoup: {
      workerBin: defaultWorkerBin(process.env),
      numWorkers,
      logLevel: 'error',
      rtcMinPort: 47400,
      rtcMaxPort: 47499,
      // Ports per transport: these tests hold no fixed port.
      mediaPort: -1,
      maxIncomingBitrate: 5_000_000,
      initialAvailableOutgoingBitrate: 1_000_000,
      consumersPerRouter: 100,
    },
    signalling: { maxMessageBytes: 64 * 1024, rateLimitPerSec: 0, pingIntervalMs: 1000, requestTimeoutMs: 5000, maxConnections: 10, endpoint: false },
  };
}

describe('MediaNode', () => {
  let node: MediaNode | undefined;
  afterEach(async () => {
    if (node) {
      await node.close();
      await closePool(node.pool);
    }
    node = undefined;
  });
  const start = async (numWorkers = 1) => {
    node = await MediaNode.create(options(numWorkers), { logger: silentLogger, tickets: new TicketVerifier() });
    trackPool(node.pool);
    return node;
  };
  const attach = (n: MediaNode) => {
    const [client, server] = channelPair();
    const closed: { code?: number; reason?: string } = {};
    client.onClose((code, reason) => Object.assign(closed, { code, reason }));
    return { session: n.attachSession(server, '127.0.0.1'), closed };
  };

  it('close() twice emits one observer close; it closes its sessions (1001), its streams (streamclose each) and its workers', async () => {
    const n = await start();
    const pids = n.pool.workers.map((w) => w.pid);
    const a = n.openStream('a', { depth: 1, state: 'live' });
    const b = n.openStream('b', { depth: 1, state: 'live' });
    await a.router.primary();
    const { session, closed } = attach(n);
    const onClose = vi.fn();
    const streamClose = vi.fn();
    n.observer.on('close', onClose);
    n.on('streamclose', streamClose);
    await n.close();
    await n.close();
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(streamClose.mock.calls.map(([s]) => s)).toEqual([a, b]);
    expect(a.closed && b.closed).toBe(true);
    expect(session.closed).toBe(true);
    await expect.poll(() => closed.code).toBe(1001);
    expect(n.streams).toEqual([]);
    expect(n.sessions).toEqual([]);
    expect(n.pool.closed).toBe(true);
    await expect.poll(() => pids.filter(alive), { timeout: 10_000 }).toEqual([]);
  });

  it('use after close: openStream() throws InvalidStateError; attachSession() throws and closes the channel with NODE_SHUTTING_DOWN', async () => {
    const n = await start();
    await n.close();
    expect(() => n.openStream('a', { depth: 0, state: 'live' })).toThrow(InvalidStateError);
    const [client, server] = channelPair();
    const closed: { code?: number; reason?: string } = {};
    client.onClose((code, reason) => Object.assign(closed, { code, reason }));
    expect(() => n.attachSession(server, '127.0.0.1')).toThrow(InvalidStateError);
    await expect.poll(() => closed).toEqual({ code: 4503, reason: 'CASCADE_ERR_NODE_SHUTTING_DOWN' });
  });

  it('openStream() gives the stream it carries; a stream that closes on its own is forgotten with streamclose', async () => {
    const n = await start();
    const newStream = vi.fn();
    n.observer.on('newstream', newStream);
    const s = n.openStream('a', { depth: 2, state: 'waiting' });
    expect(n.openStream('a', { depth: 5, state: 'live' })).toBe(s);
    expect(newStream).toHaveBeenCalledTimes(1);
    expect(s.depth).toBe(2);
    const streamClose = vi.fn();
    n.on('streamclose', streamClose);
    s.close();
    expect(streamClose).toHaveBeenCalledWith(s);
    expect(n.stream('a')).toBeUndefined();
    expect(n.openStream('a', { depth: 1, state: 'live' })).not.toBe(s);
  });

  it('a session is tracked from newsession until it closes', async () => {
    const n = await start();
    const newSession = vi.fn();
    n.observer.on('newsession', newSession);
    const { session } = attach(n);
    expect(newSession).toHaveBeenCalledWith(session);
    expect(n.sessions).toEqual([session]);
    session.close();
    expect(n.sessions).toEqual([]);
  });

  it("a worker's death is reported (workerdied) and the node keeps its workers", async () => {
    const n = await start(2);
    const died = vi.fn();
    n.on('workerdied', died);
    killWorker(n.pool.workers[0]!);
    await expect.poll(() => died.mock.calls.length, { timeout: 20_000 }).toBe(1);
    expect(n.pool.workers).toHaveLength(2);
    expect(n.closed).toBe(false);
  });
});
