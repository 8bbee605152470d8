import { CascadeError } from '../errors.js';

/**
 * A signed batch of frame digests, as the origin publishes it a few times a second on each
 * stream's digest channel (a data channel that travels with the media through every relay).
 * Binary, big-endian:
 *
 * ```
 * u8  version (1)
 * u8  flags              bit 0: layer tags follow the digests (BATCH_FLAG_LAYERS)
 * u8  stream id length L, then L bytes of the stream id (ASCII)
 * u32 seq                  batches of one stream from 1 up, one per interval
 * f64 originTime           the origin's clock when the batch was made (ms since the epoch)
 * u16 intervalMs           the batch period
 * u16 videoFrames          video frames (all layers) the origin received in this period
 * u16 audioFrames          audio frames the origin received in this period
 * u16 N, then N digests of DIGEST_BYTES each: this period's frames and the previous period's
 *                          (each digest travels twice, so one lost batch loses none)
 * N×u8 layer tags           with BATCH_FLAG_LAYERS: what each digest's frame was (FRAME_TAG_*)
 * 64  signature            ECDSA P-256 / SHA-256 over everything before it (r || s)
 * ```
 *
 * Everything a relay could want to change (stream, order, age, the digests) is signed; the key
 * that verifies it reaches viewers from the origin over their own signalling, never from a relay.
 */
export interface DigestBatch {
  streamId: string;
  seq: number;
  originTime: number;
  intervalMs: number;
  videoFrames: number;
  audioFrames: number;
  digests: Uint8Array[];
  /**
   * One tag per digest, in the same order (FRAME_TAG_AUDIO, or FRAME_TAG_VIDEO + the simulcast
   * layer's index): which layers the origin gets, so that a viewer whose layer the broadcaster
   * stopped sending (its uplink dipped) does not blame its node for the gap. Absent: untagged.
   */
  layers?: Uint8Array;
}

/** Flag: the batch carries a layer tag per digest. */
export const BATCH_FLAG_LAYERS = 1;
/** Tag of an audio frame's digest. */
export const FRAME_TAG_AUDIO = 0;
/** Tag of a video frame of layer k: FRAME_TAG_VIDEO + k (k < 254); FRAME_TAG_VIDEO_UNKNOWN when the origin cannot say. */
export const FRAME_TAG_VIDEO = 1;
export const FRAME_TAG_VIDEO_UNKNOWN = 255;

export const BATCH_VERSION = 1;
/** Bytes of a frame digest (a truncated SHA-256: 128 bits, no second preimage within a stream's lifetime). */
export const DIGEST_BYTES = 16;
export const SIGNATURE_BYTES = 64;
/** Label of the digest channel's data producers and consumers. */
export const INTEGRITY_LABEL = 'cascade-integrity';
/** Algorithm of the stream keys (WebCrypto names): ECDSA on P-256 with SHA-256, IEEE P1363 signatures. */
export const INTEGRITY_ALGORITHM = 'ECDSA-P256-SHA256';
/** Most digests one batch may carry (a busy simulcast stream at 100 ms has a few dozen). */
export const MAX_BATCH_DIGESTS = 1024;

/** The signed part of a batch. */
export function encodeBatchBody(b: DigestBatch): Uint8Array {
  const id = new TextEncoder().encode(b.streamId);
  if (id.length > 255) throw new TypeError('stream id too long');
  const n = Math.min(b.digests.length, MAX_BATCH_DIGESTS);
  const tagged = b.layers !== undefined;
  if (tagged && b.layers!.length !== b.digests.length) throw new TypeError('one layer tag per digest');
  const out = new Uint8Array(3 + id.length + 4 + 8 + 2 * 4 + n * DIGEST_BYTES + (tagged ? n : 0));
  const v = new DataView(out.buffer);
  let o = 0;
  out[o++] = BATCH_VERSION;
  out[o++] = tagged ? BATCH_FLAG_LAYERS : 0;
  out[o++] = id.length;
  out.set(id, o);
  o += id.length;
  v.setUint32(o, b.seq >>> 0);
  o += 4;
  v.setFloat64(o, b.originTime);
  o += 8;
  v.setUint16(o, clamp16(b.intervalMs));
  v.setUint16(o + 2, clamp16(b.videoFrames));
  v.setUint16(o + 4, clamp16(b.audioFrames));
  v.setUint16(o + 6, n);
  o += 8;
  for (let i = 0; i < n; i++) {
    out.set(b.digests[i]!.subarray(0, DIGEST_BYTES), o);
    o += DIGEST_BYTES;
  }
  if (tagged) out.set(b.layers!.subarray(0, n), o);
  return out;
}

export function signedBatch(body: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length !== SIGNATURE_BYTES) throw new TypeError(`signature must have ${SIGNATURE_BYTES} bytes`);
  const out = new Uint8Array(body.length + SIGNATURE_BYTES);
  out.set(body);
  out.set(signature, body.length);
  return out;
}

/**
 * Parse a batch (nothing is verified here). Anything that is not one, cut short or with
 * trailing bytes, is CASCADE_ERR_INTEGRITY_MALFORMED.
 */
export function decodeBatch(bytes: Uint8Array): { batch: DigestBatch; body: Uint8Array; signature: Uint8Array } {
  const bad = (why: string) => new CascadeError('CASCADE_ERR_INTEGRITY_MALFORMED', why);
  if (bytes.length < 3 + 4 + 8 + 8 + SIGNATURE_BYTES) throw bad('too short');
  if (bytes[0] !== BATCH_VERSION) throw bad(`version ${bytes[0]}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idLen = bytes[2]!;
  let o = 3;
  if (o + idLen + 20 + SIGNATURE_BYTES > bytes.length) throw bad('too short');
  const streamId = new TextDecoder().decode(bytes.subarray(o, o + idLen));
  o += idLen;
  const seq = v.getUint32(o);
  const originTime = v.getFloat64(o + 4);
  const intervalMs = v.getUint16(o + 12);
  const videoFrames = v.getUint16(o + 14);
  const audioFrames = v.getUint16(o + 16);
  const n = v.getUint16(o + 18);
  o += 20;
  const flags = bytes[1]!;
  if ((flags & ~BATCH_FLAG_LAYERS) !== 0) throw bad(`flags ${flags}`);
  const tagged = (flags & BATCH_FLAG_LAYERS) !== 0;
  if (n > MAX_BATCH_DIGESTS) throw bad('too many digests');
  if (o + n * DIGEST_BYTES + (tagged ? n : 0) + SIGNATURE_BYTES !== bytes.length) throw bad('length does not match');
  if (!Number.isFinite(originTime)) throw bad('origin time');
  const digests: Uint8Array[] = [];
  for (let i = 0; i < n; i++) digests.push(bytes.subarray(o + i * DIGEST_BYTES, o + (i + 1) * DIGEST_BYTES));
  o += n * DIGEST_BYTES;
  const layers = tagged ? bytes.subarray(o, o + n) : undefined;
  if (tagged) o += n;
  return {
    batch: { streamId, seq, originTime, intervalMs, videoFrames, audioFrames, digests, ...(layers ? { layers } : {}) },
    body: bytes.subarray(0, o),
    signature: bytes.subarray(o),
  };
}

/** A digest as a map key. */
export function digestKey(d: Uint8Array): string {
  let s = '';
  for (let i = 0; i < DIGEST_BYTES && i < d.length; i++) s += (d[i]! < 16 ? '0' : '') + d[i]!.toString(16);
  return s;
}

function clamp16(n: number): number {
  return Math.max(0, Math.min(0xffff, Math.round(n)));
}
