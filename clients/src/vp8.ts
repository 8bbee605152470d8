/**
 * Enough of the VP8 RTP payload format (RFC 7741) to tell where a key frame starts, and its
 * size, so a receive-only viewer that does not decode can still say when it could have decoded
 * again, and at which resolution.
 */

/** Where the VP8 payload starts in an RTP payload that begins a frame (partition 0), or undefined. */
function frameStart(payload: Uint8Array): number | undefined {
  if (payload.length < 2) return undefined;
  const b0 = payload[0]!;
  const extended = (b0 & 0x80) !== 0;
  const start = (b0 & 0x10) !== 0;
  const partition = b0 & 0x07;
  if (!start || partition !== 0) return undefined;
  let i = 1;
  if (extended) {
    const b1 = payload[1]!;
    i = 2;
    if (b1 & 0x80) i += payload[i]! & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (b1 & 0x40) i += 1; // TL0PICIDX
    if (b1 & 0x20 || b1 & 0x10) i += 1; // TID/Y/KEYIDX
  }
  return i < payload.length ? i : undefined;
}

export function isVp8KeyframeStart(payload: Uint8Array): boolean {
  const i = frameStart(payload);
  // VP8 payload header: P bit (inverse key frame flag) is bit 0 of the first byte.
  return i !== undefined && (payload[i]! & 0x01) === 0;
}

/** A key frame's width and height (RFC 6386 9.1: after the 3-byte frame tag and the start code), or undefined. */
export function vp8KeyframeSize(payload: Uint8Array): { width: number; height: number } | undefined {
  const i = frameStart(payload);
  if (i === undefined || (payload[i]! & 0x01) !== 0 || payload.length < i + 10) return undefined;
  if (payload[i + 3] !== 0x9d || payload[i + 4] !== 0x01 || payload[i + 5] !== 0x2a) return undefined;
  return { width: (payload[i + 6]! | (payload[i + 7]! << 8)) & 0x3fff, height: (payload[i + 8]! | (payload[i + 9]! << 8)) & 0x3fff };
}
