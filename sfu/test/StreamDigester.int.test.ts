import dgram from 'node:dgram';
import type { types } from 'mediasoup';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FRAME_TAG_AUDIO, FRAME_TAG_VIDEO, canonicalFromRtp, decodeBatch, digestKey, silentLogger } from '@cascade/protocol';
import { defaultWorkerBin } from '@cascade/config';
import { loadMediasoup } from '../src/loadMediasoup.js';
import { WorkerPool } from '../src/WorkerPool.js';
import { LocalStream } from '../src/LocalStream.js';
import { IntegrityChannel } from '../src/integrity/IntegrityChannel.js';
import { StreamDigester, frameDigest } from '../src/integrity/StreamDigester.js';
import { StreamKey, verifySignature } from '../src/integrity/StreamKey.js';
import type { StreamRouterHandle } from '../src/appData.js';

/**
 * The origin's side of integrity with a real worker: RTP sent to a producer becomes frames, their
 * digests go out in signed batches on the stream's digest channel, and closing is clean.
 */
let pool: WorkerPool;
beforeAll(async () => {
  pool = await WorkerPool.create(await loadMediasoup(defaultWorkerBin(process.env)), { numWorkers: 1, logLevel: 'warn', rtcMinPort: 47200, rtcMaxPort: 47299 }, { logger: silentLogger });
});
afterAll(() => pool?.close());

/** Opus: every packet a frame (video consumers wait for a key frame that mediasoup recognises, beside the point in most tests). */
const opusSource = (plain: types.PlainTransport) =>
  plain.produce({ kind: 'audio', rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 1111 }] } });

async function streamWithSource(id: string, produce: (plain: types.PlainTransport) => Promise<types.Producer> = opusSource) {
  const stream = new LocalStream(pool, { id, consumersPerRouter: 100, depth: 0, state: 'live', title: '', createdAt: Date.now() }, { logger: silentLogger });
  const router = await stream.router.primary();
  const plain = await router.createPlainTransport({ listenIp: { ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
  return { stream, router, plain, producer: await produce(plain) };
}

/** A digester with `producer` as the stream's source, and the batches it sends as a node would get them (from the first on). */
async function digesting(stream: LocalStream, router: StreamRouterHandle, producer: types.Producer, key = new StreamKey()) {
  const digester = new StreamDigester(stream, IntegrityChannel.of(stream, { logger: silentLogger }), key, { intervalMs: 50, memoryMs: 5000 }, { logger: silentLogger });
  stream.setSource(producer);
  const direct = await router.createDirectTransport();
  const messages: Buffer[] = [];
  direct.observer.on('newdataconsumer', (dc: types.DataConsumer) => dc.on('message', (m: Buffer) => messages.push(m)));
  await IntegrityChannel.of(stream, { logger: silentLogger }).consumeOn(direct, router);
  // The digester's tap is created as the source is set (a request to the worker): let it be there first.
  await vi.waitFor(() => expect(messages.length).toBeGreaterThan(0));
  await new Promise((r) => setTimeout(r, 200));
  return { digester, messages };
}

/** Opus frame `n`: one RTP packet. */
function frame(n: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = 0x80;
  b[1] = 100;
  b.writeUInt16BE(1000 + n, 2);
  b.writeUInt32BE(n * 960, 4);
  b.writeUInt32BE(1111, 8);
  return Buffer.concat([b, Buffer.from([0x78, n, 1, 2, 3])]);
}

describe('StreamDigester', () => {
  it('signs a batch of the digests of every frame received, on the digest channel', async () => {
    const { stream, router, plain, producer } = await streamWithSource('digests1');
    const key = new StreamKey();
    const { digester, messages } = await digesting(stream, router, producer, key);
    const socket = dgram.createSocket('udp4');
    for (let n = 0; n < 10; n++) socket.send(frame(n), plain.tuple.localPort, '127.0.0.1');
    const want = Array.from({ length: 10 }, (_, n) => digestKey(frameDigest(canonicalFromRtp('opus', [frame(n).subarray(12)]))));
    await vi.waitFor(() => {
      const got = new Set(messages.flatMap((m) => decodeBatch(m).batch.digests.map(digestKey)));
      expect(want.every((d) => got.has(d))).toBe(true);
    }, { timeout: 5000 });
    for (const m of messages) {
      const { batch, body, signature } = decodeBatch(m);
      expect(batch.streamId).toBe('digests1');
      expect([...batch.layers!].every((t) => t === FRAME_TAG_AUDIO)).toBe(true);
      expect(verifySignature(key.publicKey, body, signature)).toBe(true);
      expect(verifySignature(new StreamKey().publicKey, body, signature)).toBe(false);
    }
    const seqs = messages.map((m) => decodeBatch(m).batch.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(digester.sentAt(frameDigest(canonicalFromRtp('opus', [frame(3).subarray(12)])))).toBeTypeOf('number');
    socket.close();
    stream.close();
  });

  it('tags each video frame\'s digest with its simulcast layer (its SSRC\'s place among the encodings, lowest first)', async () => {
    const ssrcs = [2221, 2222, 2223];
    const { stream, router, plain, producer } = await streamWithSource('digests4', (t) =>
      t.produce({ kind: 'video', rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }], encodings: ssrcs.map((ssrc) => ({ ssrc })) } }),
    );
    const { messages } = await digesting(stream, router, producer);
    // Single-packet VP8 key frames, each layer's with its own payload (sent until the tap has them).
    let n = 0;
    const packet = (layer: number) => {
      const h = Buffer.alloc(12);
      h[0] = 0x80;
      h[1] = 0x80 | 101;
      h.writeUInt16BE(500 + n, 2);
      h.writeUInt32BE(90_000 + 3000 * n, 4);
      h.writeUInt32BE(ssrcs[layer]!, 8);
      // Descriptor: X and S set, a two-byte picture id (mediasoup reads key frames only so); then a key frame's payload header.
      return Buffer.concat([h, Buffer.from([0x90, 0x80, 0x80, n & 0x7f, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, layer, 1, 2, 3])]);
    };
    const socket = dgram.createSocket('udp4');
    const send = () => {
      n++;
      for (const l of [0, 1, 2]) socket.send(packet(l), plain.tuple.localPort, '127.0.0.1');
    };
    send();
    const want = [0, 1, 2].map((l) => digestKey(frameDigest(canonicalFromRtp('vp8', [packet(l).subarray(12)]))));
    await vi.waitFor(() => {
      send();
      const tags = new Map<string, number>();
      for (const m of messages) {
        const b = decodeBatch(m).batch;
        b.digests.forEach((d, i) => tags.set(digestKey(d), b.layers![i]!));
      }
      expect(want.map((d) => tags.get(d))).toEqual([FRAME_TAG_VIDEO, FRAME_TAG_VIDEO + 1, FRAME_TAG_VIDEO + 2]);
    }, { timeout: 5000 });
    socket.close();
    stream.close();
  });

  it('close() twice emits one close; the stream closing closes the digester and the channel; a closed channel sends nothing', async () => {
    const { stream } = await streamWithSource('digests2');
    const channel = IntegrityChannel.of(stream, { logger: silentLogger });
    const d1 = new StreamDigester(stream, channel, new StreamKey(), { intervalMs: 50, memoryMs: 5000 }, { logger: silentLogger });
    const closes = vi.fn();
    d1.observer.on('close', closes);
    d1.close();
    d1.close();
    expect(closes).toHaveBeenCalledTimes(1);
    const d2 = new StreamDigester(stream, channel, new StreamKey(), { intervalMs: 50, memoryMs: 5000 }, { logger: silentLogger });
    const closes2 = vi.fn();
    d2.observer.on('close', closes2);
    stream.close();
    expect(closes2).toHaveBeenCalledTimes(1);
    expect(channel.closed).toBe(true);
    await channel.send(new Uint8Array(10));
    await expect(channel.consumeOn({} as types.Transport, {} as StreamRouterHandle)).rejects.toMatchObject({ code: 'CASCADE_ERR_INVALID_STATE' });
  });

  it('the channel keeps the last second of batches for a viewer subscribing now (integrity.subscribe hands them over), oldest first', async () => {
    const { stream, producer } = await streamWithSource('digests3');
    const channel = IntegrityChannel.of(stream, { logger: silentLogger });
    const digester = new StreamDigester(stream, channel, new StreamKey(), { intervalMs: 50, memoryMs: 5000 }, { logger: silentLogger });
    stream.setSource(producer);
    await new Promise((r) => setTimeout(r, 1600));
    const recent = channel.recent().map((b) => decodeBatch(Buffer.from(b, 'base64')).batch);
    // 50 ms batches for 1.6 s: a second's worth (bounded at 20), consecutive, the newest just sent.
    expect(recent.length).toBeGreaterThanOrEqual(14);
    expect(recent.length).toBeLessThanOrEqual(20);
    expect(recent.every((b, i) => i === 0 || b.seq === recent[i - 1]!.seq + 1)).toBe(true);
    expect(recent.every((b) => b.streamId === 'digests3')).toBe(true);
    expect(Date.now() - recent.at(-1)!.originTime).toBeLessThan(200);
    expect(Date.now() - recent[0]!.originTime).toBeLessThanOrEqual(1100);
    // Nothing is handed over once the stream (and its channel) closed.
    digester.close();
    stream.close();
    expect(channel.recent()).toEqual([]);
  });
});
