import { describe, expect, it } from 'vitest';
import { DIGEST_BYTES, decodeBatch, digestKey, encodeBatchBody, signedBatch, type DigestBatch } from '../src/integrity/batch.js';

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
