import { describe, expect, it } from 'vitest';
import { BATCH_FLAG_LAYERS, DIGEST_BYTES, FRAME_TAG_AUDIO, FRAME_TAG_VIDEO, decodeBatch, digestKey, encodeBatchBody, signedBatch, type DigestBatch } from '../src/integrity/batch.js';

const batch: DigestBatch = {
  streamId: 'k3v9d2xq7m',
  seq: 42,
  originTime: 1_796_400_000_123.5,
  intervalMs: 100,
  videoFrames: 3,
  audioFrames: 5,
  digests: [new Uint8Array(DIGEST_BYTES).fill(1), new Uint8Array(DIGEST_BYTES).fill(0xab)],
};

describe('digest batches', () => {
  it('round-trip: what is decoded is what was signed', () => {
    const body = encodeBatchBody(batch);
    const sig = new Uint8Array(64).fill(7);
    const d = decodeBatch(signedBatch(body, sig));
    expect(d.batch).toMatchObject({ ...batch, digests: expect.any(Array) });
    expect(d.batch.digests.map(digestKey)).toEqual(batch.digests.map(digestKey));
    expect([...d.body]).toEqual([...body]);
    expect([...d.signature]).toEqual([...sig]);
  });

  it('layer tags travel inside the signed part, one per digest; untagged batches still read', () => {
    const tagged = { ...batch, layers: Uint8Array.of(FRAME_TAG_VIDEO + 2, FRAME_TAG_AUDIO) };
    const body = encodeBatchBody(tagged);
    expect(body[1]).toBe(BATCH_FLAG_LAYERS);
    expect(body.length).toBe(encodeBatchBody(batch).length + 2);
    const d = decodeBatch(signedBatch(body, new Uint8Array(64)));
    expect([...d.batch.layers!]).toEqual([FRAME_TAG_VIDEO + 2, FRAME_TAG_AUDIO]);
    expect([...d.body]).toEqual([...body]);
    expect(decodeBatch(signedBatch(encodeBatchBody(batch), new Uint8Array(64))).batch.layers).toBeUndefined();
    expect(() => encodeBatchBody({ ...batch, layers: Uint8Array.of(1) })).toThrow(TypeError);
    // A tag cut off, or a flag nobody defined: malformed.
    const signed = signedBatch(body, new Uint8Array(64));
    const cut = Uint8Array.of(...signed.subarray(0, body.length - 1), ...signed.subarray(body.length));
    const unknownFlag = Uint8Array.from(signed, (b, i) => (i === 1 ? 0x82 : b));
    for (const c of [cut, unknownFlag]) expect(() => decodeBatch(c)).toThrow(expect.objectContaining({ code: 'CASCADE_ERR_INTEGRITY_MALFORMED' }));
  });

  it('anything else is CASCADE_ERR_INTEGRITY_MALFORMED, never a crash', () => {
    const good = signedBatch(encodeBatchBody(batch), new Uint8Array(64));
    const cases = [new Uint8Array(0), good.subarray(0, 40), Uint8Array.of(...good, 0), Uint8Array.of(2, ...good.subarray(1))];
    for (const c of cases) expect(() => decodeBatch(c)).toThrow(expect.objectContaining({ code: 'CASCADE_ERR_INTEGRITY_MALFORMED' }));
    for (let i = 0; i < 200; i++) {
      const junk = Uint8Array.from({ length: (i * 37) % 300 }, (_, k) => (k * 131 + i) & 0xff);
      try {
        decodeBatch(junk);
      } catch (err) {
        expect((err as { code?: string }).code).toBe('CASCADE_ERR_INTEGRITY_MALFORMED');
      }
    }
  });
});
