import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

/**
 * A stream's signing key (ECDSA P-256): made by the origin when the stream starts, never
 * leaving it. The public half (base64 SPKI) goes into the stream's record, and from there to
 * viewers through the origin they talk to; WebCrypto and Node both verify its IEEE P1363
 * signatures.
 */
export class StreamKey {
  readonly publicKey: string;
  readonly #private: KeyObject;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    this.#private = privateKey;
    this.publicKey = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  }

  sign(body: Uint8Array): Uint8Array {
    return sign('sha256', body, { key: this.#private, dsaEncoding: 'ieee-p1363' });
  }
}

/** Whether `signature` over `body` verifies with a base64 SPKI P-256 key. */
export function verifySignature(publicKey: string, body: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
    return verify('sha256', body, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}
