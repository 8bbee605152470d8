import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * A key of its own for each use of the deployment secret (each token kind, session cookies):
 * HKDF-SHA256 with the use as `info`. A token signed for one use never verifies for another,
 * even where a scope check is forgotten, and no key reveals the secret or its siblings.
 */
export function deriveKey(secret: string, use: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from('cascade-keys-v1'), Buffer.from(use), 32));
}

/** base64url HMAC-SHA256 of `data`. */
export function hmac(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('base64url');
}

/** Constant-time comparison of two strings (false for different lengths). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
