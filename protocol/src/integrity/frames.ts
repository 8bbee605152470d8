/**
 * Encoded frames in one canonical form, whoever reassembles them: the origin from the RTP its
 * broadcaster sends, a Node viewer from the RTP it receives, a browser from the frames its
 * receiver hands to an encoded transform. A frame's digest is computed over this form, so the
 * same frame gives the same digest at the origin and at every viewer, whatever the relays in
 * between did to the packets' headers (sequence numbers, SSRCs, VP8 picture ids are rewritten
 * on the way; payloads are not).
 *
 * - VP8: the frame itself (RTP payloads without their payload descriptors, concatenated), as a
 *   browser's RTCEncodedVideoFrame holds it.
 * - H.264: its NAL units (access unit delimiters and filler left out, trailing zero bytes
 *   trimmed), each preceded by its length on 4 bytes: Annex B start codes (3 or 4 bytes) and
 *   RTP packetization (single NAL, STAP-A, FU-A) both come down to the same units.
 * - Opus: the packet.
 */

export type FrameCodec = 'vp8' | 'h264' | 'opus';

/** The codec a mediasoup/WebRTC mimeType stands for, if frames of it can be checked. */
export function frameCodecOf(mimeType: string): FrameCodec | undefined {
  switch (mimeType.toLowerCase()) {
    case 'video/vp8':
      return 'vp8';
    case 'video/h264':
      return 'h264';
    case 'audio/opus':
      return 'opus';
    default:
      return undefined;
  }
}

/** Length of the VP8 payload descriptor at the start of an RTP payload (RFC 7741 §4.2), or -1 if it is cut short. */
export function vp8DescriptorLength(payload: Uint8Array): number {
  if (payload.length < 1) return -1;
  let i = 1;
  if (payload[0]! & 0x80) {
    if (payload.length < 2) return -1;
    const x = payload[1]!;
    i = 2;
    if (x & 0x80) {
      if (payload.length <= i) return -1;
      i += payload[i]! & 0x80 ? 2 : 1;
    }
    if (x & 0x40) i += 1;
    if (x & 0x20 || x & 0x10) i += 1;
  }
  return i <= payload.length ? i : -1;
}

/** Whether this VP8 RTP payload starts a frame (S bit, partition 0). */
export function vp8StartsFrame(payload: Uint8Array): boolean {
  return payload.length > 0 && (payload[0]! & 0x10) !== 0 && (payload[0]! & 0x07) === 0;
}

const H264_AUD = 9;
const H264_FILLER = 12;

/** NAL units carried by one H.264 RTP payload (RFC 6184): whole ones, or an FU-A fragment. */
type H264Piece = { nal: Uint8Array } | { fragment: Uint8Array; start: boolean; end: boolean; header: number };

function h264Pieces(payload: Uint8Array): H264Piece[] {
  if (payload.length < 1) return [];
  const type = payload[0]! & 0x1f;
  if (type >= 1 && type <= 23) return [{ nal: payload }];
  if (type === 24) {
    // STAP-A: 16-bit sizes, each followed by a NAL unit.
    const out: H264Piece[] = [];
    for (let i = 1; i + 2 <= payload.length; ) {
      const size = (payload[i]! << 8) | payload[i + 1]!;
      i += 2;
      if (size === 0 || i + size > payload.length) break;
      out.push({ nal: payload.subarray(i, i + size) });
      i += size;
    }
    return out;
  }
  if (type === 28 && payload.length >= 2) {
    const fu = payload[1]!;
    return [{ fragment: payload.subarray(2), start: (fu & 0x80) !== 0, end: (fu & 0x40) !== 0, header: (payload[0]! & 0xe0) | (fu & 0x1f) }];
  }
  return [];
}

/** NAL units of a frame's RTP payloads, in order (FU-A fragments joined). */
function h264NalsFromRtp(payloads: Uint8Array[]): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let fu: Uint8Array[] | undefined;
  for (const p of payloads) {
    for (const piece of h264Pieces(p)) {
      if ('nal' in piece) {
        nals.push(piece.nal);
        continue;
      }
      if (piece.start) fu = [Uint8Array.of(piece.header)];
      if (!fu) continue;
      fu.push(piece.fragment);
      if (piece.end) {
        nals.push(concat(fu));
        fu = undefined;
      }
    }
  }
  return nals;
}

/** NAL units of an Annex B byte stream (start codes 00 00 01 or 00 00 00 01). */
export function h264NalsFromAnnexB(data: Uint8Array): Uint8Array[] {
  const starts: { at: number; len: number }[] = [];
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      starts.push({ at: i, len: 3 });
      i += 2;
    }
  }
  const nals: Uint8Array[] = [];
  for (let k = 0; k < starts.length; k++) {
    const from = starts[k]!.at + starts[k]!.len;
    const to = k + 1 < starts.length ? starts[k + 1]!.at : data.length;
    nals.push(data.subarray(from, to));
  }
  return nals;
}

/** The canonical form of an H.264 frame given as NAL units (see the module comment). */
export function h264Canonical(nals: Uint8Array[]): Uint8Array {
  const kept: Uint8Array[] = [];
  for (const raw of nals) {
    let end = raw.length;
    // A zero byte before a 4-byte start code belongs to it or to the NAL depending on who wrote it.
    while (end > 0 && raw[end - 1] === 0) end--;
    if (end === 0) continue;
    const type = raw[0]! & 0x1f;
    if (type === H264_AUD || type === H264_FILLER) continue;
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, end);
    kept.push(len, raw.subarray(0, end));
  }
  return concat(kept);
}

/** The canonical form of one frame from its RTP payloads (in sequence order). */
export function canonicalFromRtp(codec: FrameCodec, payloads: Uint8Array[]): Uint8Array {
  switch (codec) {
    case 'opus':
      return concat(payloads);
    case 'vp8':
      return concat(payloads.map((p) => p.subarray(Math.max(0, vp8DescriptorLength(p)))));
    case 'h264':
      return h264Canonical(h264NalsFromRtp(payloads));
  }
}

/** The canonical form of a frame as a browser's encoded transform hands it over. */
export function canonicalFromEncoded(codec: FrameCodec, data: Uint8Array): Uint8Array {
  return codec === 'h264' ? h264Canonical(h264NalsFromAnnexB(data)) : data;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
