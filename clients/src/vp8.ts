/**
 * Enough of the VP8 RTP payload format (RFC 7741) to tell where a key frame starts, so a
 * receive-only viewer that does not decode can still say when it could have decoded again.
 */
export function isVp8KeyframeStart(payload: Uint8Array): boolean {
  if (payload.length < 2) return false;
  const b0 = payload[0]!;
  const extended = (b0 & 0x80) !== 0;
  const start = (b0 & 0x10) !== 0;
  const partition = b0 & 0x07;
  if (!start || partition !== 0) return false;
  let i = 1;
  if (extended) {
    const b1 = payload[1]!;
    i = 2;
    if (b1 & 0x80) i += payload[i]! & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (b1 & 0x40) i += 1; // TL0PICIDX
    if (b1 & 0x20 || b1 & 0x10) i += 1; // TID/Y/KEYIDX
  }
  if (i >= payload.length) return false;
  // VP8 payload header: P bit (inverse key frame flag) is bit 0 of the first byte.
  return (payload[i]! & 0x01) === 0;
}
