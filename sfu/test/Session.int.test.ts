import { afterEach, describe, expect, it, vi } from 'vitest';
import { channelPair, silentLogger } from '@cascade/protocol';
import { Session } from '../src/Session.js';
import type { WorkerPool } from '../src/WorkerPool.js';
import { closePool, killWorker, startPool } from './mediaFixtures.js';
import type { ClientTransportData, RouterData } from '../src/appData.js';

const OPTIONS = { maxMessageBytes: 64 * 1024, rateLimitPerSec: 0, requestTimeoutMs: 5000, remoteAddress: '127.0.0.1', maxTransports: 2 };

/** A session on an in-process channel, and how its client saw it close. */
function open() {
  const [client, server] = channelPair();
  const closed: { code?: number; reason?: string } = {};
  client.onClose((code, reason) => Object.assign(closed, { code, reason }));
  const session = new Session(server, OPTIONS, { logger: silentLogger });
  return { session, closed };
}

describe('Session', () => {
  let pool: WorkerPool | undefined;
  afterEach(async () => {
    if (pool) await closePool(pool);
    pool = undefined;
  });
  const transport = async () => {
    const worker = pool!.leastLoaded();
    const router = await worker.createRouter<RouterData>({ mediaCodecs: [], appData: { worker, streamId: 's', piped: new Map() } });
    return router.createPlainTransport<ClientTransportData>({ listenIp: { ip: '127.0.0.1' }, appData: { direction: 'send', router } });
  };

  it('close() twice emits close once, closes its transports and its connection', async () => {
    pool = await startPool(1);
    const { session, closed } = open();
    const t = await transport();
    session.addTransport(t);
    const onClose = vi.fn();
    session.on('close', onClose);
    session.close(1000, 'bye');
    session.close(1000, 'bye');
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(session.closed).toBe(true);
    expect(session.peer.closed).toBe(true);
    expect(t.closed).toBe(true);
    await expect.poll(() => closed.code).toBe(1000);
  });

  it('a transport added after close is closed at once', async () => {
    pool = await startPool(1);
    const { session } = open();
    session.close();
    const t = await transport();
    session.addTransport(t);
    expect(t.closed).toBe(true);
    expect(session.transportCount).toBe(0);
  });

  it("its router's close ends it with CASCADE_ERR_MEDIA_WORKER_DIED (4503): the client knows to reconnect", async () => {
    pool = await startPool(1);
    const { session, closed } = open();
    const t = await transport();
    session.addTransport(t);
    const onClose = vi.fn();
    session.on('close', onClose);
    killWorker(pool.workers[0]!);
    await expect.poll(() => closed, { timeout: 10_000 }).toEqual({ code: 4503, reason: 'CASCADE_ERR_MEDIA_WORKER_DIED' });
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(session.closed).toBe(true);
  });

  it('a transport closed on its own is forgotten; the limit counts places being taken', async () => {
    pool = await startPool(1);
    const { session } = open();
    const t = await transport();
    session.addTransport(t);
    t.close();
    expect(session.transportCount).toBe(0);
    const a = session.reserveTransport();
    session.reserveTransport();
    expect(() => session.reserveTransport()).toThrow(expect.objectContaining({ code: 'CASCADE_ERR_MEDIA_LIMIT' }));
    a();
    a();
    expect(() => session.reserveTransport()).not.toThrow();
    session.close();
  });

  it('its connection closing from the far side closes it', async () => {
    const [client, server] = channelPair();
    const session = new Session(server, OPTIONS, { logger: silentLogger });
    const onClose = vi.fn();
    session.on('close', onClose);
    client.close(1001, 'gone');
    await expect.poll(() => onClose.mock.calls.length).toBe(1);
    expect(session.closed).toBe(true);
  });
  it('finds client transports by id with their kind checked; a pipe it owns is closed with it but never found', async () => {
    pool = await startPool(1);
    const { session } = open();
    const plain = await transport();
    session.addTransport(plain);
    expect(session.transport(plain.id)).toBe(plain);
    // A plain RTP transport (an ingest's) asked for as WebRTC: a coded refusal, not a crash on a missing method.
    expect(() => session.webRtcTransport(plain.id)).toThrow(expect.objectContaining({ code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' }));
    const pipe = await pool.leastLoaded().createRouter({ mediaCodecs: [] }).then((r) => r.createPipeTransport({ listenIp: { ip: '127.0.0.1' } }));
    session.addPipeTransport(pipe);
    expect(session.transportCount).toBe(2);
    expect(() => session.transport(pipe.id)).toThrow(expect.objectContaining({ code: 'CASCADE_ERR_MEDIA_TRANSPORT_NOT_FOUND' }));
    session.close();
    expect(pipe.closed).toBe(true);
    expect(plain.closed).toBe(true);
  });
});
