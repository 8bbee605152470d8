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
const H264_IDR = 5;

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

/** Whether a canonical H.264 frame holds an IDR slice. */
function h264HasIdr(canonical: Uint8Array): boolean {
  const view = new DataView(canonical.buffer, canonical.byteOffset, canonical.byteLength);
  for (let i = 0; i + 4 < canonical.length; ) {
    const len = view.getUint32(i);
    if ((canonical[i + 4]! & 0x1f) === H264_IDR) return true;
    i += 4 + len;
  }
  return false;
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

/** What a receiver needs of an RTP packet to rebuild frames. */
export interface RtpPacketView {
  ssrc: number;
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  payloadType: number;
  payload: Uint8Array;
}

export interface AssembledFrame {
  ssrc: number;
  /** RTP timestamp (as received: a relay may shift it, so it names the frame only per receiver). */
  timestamp: number;
  kind: 'audio' | 'video';
  /** Canonical form (see the module comment). */
  data: Uint8Array;
  /** A video key frame (VP8 key frame, H.264 IDR). */
  key: boolean;
}

export interface FrameAssemblerOptions {
  /** Payload types of the media (RTX and others are ignored), with their codec. */
  codecs: ReadonlyMap<number, FrameCodec>;
  /** An incomplete frame is given up this long after its first packet (ms). Default 3000. */
  maxAgeMs?: number;
  now?: () => number;
}

interface PendingFrame {
  packets: Map<number, Uint8Array>;
  startSeq?: number;
  endSeq?: number;
  firstAt: number;
}

interface SsrcState {
  codec: FrameCodec;
  /** Highest extended sequence number seen. */
  highest: number;
  frames: Map<number, PendingFrame>;
  /** Extended sequence number → RTP timestamp of recent packets (where H.264 frames start). */
  seqTs: Map<number, number>;
  /** Frames already emitted (timestamp → when): a late duplicate must not emit one twice. */
  done: Map<number, number>;
}

/** Recent packets remembered per SSRC (to find where an H.264 frame starts). */
const SEQ_MEMORY = 2048;

/**
 * Rebuilds complete frames from RTP packets that may arrive lost, late, repeated or reordered
 * (NACK repairs arrive out of order): a frame is emitted once, when every packet from its
 * first to its marker is there. A frame missing a packet for good is dropped after maxAgeMs,
 * silently: loss is not tampering. Padding (empty payloads) and unknown payload types are ignored.
 */
export class FrameAssembler {
  readonly #codecs: ReadonlyMap<number, FrameCodec>;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #onFrame: (frame: AssembledFrame) => void;
  readonly #ssrcs = new Map<number, SsrcState>();
  #lastSweep = 0;

  constructor(options: FrameAssemblerOptions, onFrame: (frame: AssembledFrame) => void) {
    this.#codecs = options.codecs;
    this.#maxAgeMs = options.maxAgeMs ?? 3000;
    this.#now = options.now ?? Date.now;
    this.#onFrame = onFrame;
  }

  /** Frames being assembled, all SSRCs together. */
  get pending(): number {
    let n = 0;
    for (const s of this.#ssrcs.values()) n += s.frames.size;
    return n;
  }

  push(pkt: RtpPacketView): void {
    const codec = this.#codecs.get(pkt.payloadType);
    if (!codec || pkt.payload.length === 0) return;
    const now = this.#now();
    if (now - this.#lastSweep > 250) this.#sweep(now);
    let s = this.#ssrcs.get(pkt.ssrc);
    if (!s || s.codec !== codec) {
      s = { codec, highest: pkt.sequenceNumber, frames: new Map(), seqTs: new Map(), done: new Map() };
      this.#ssrcs.set(pkt.ssrc, s);
    }
    const seq = extend(s.highest, pkt.sequenceNumber);
    if (seq > s.highest) s.highest = seq;
    if (codec === 'opus') {
      if (s.done.has(seq)) return;
      s.done.set(seq, now);
      this.#onFrame({ ssrc: pkt.ssrc, timestamp: pkt.timestamp, kind: 'audio', data: pkt.payload.slice(), key: false });
      return;
    }
    if (s.done.has(pkt.timestamp)) return;
    s.seqTs.set(seq, pkt.timestamp);
    if (s.seqTs.size > SEQ_MEMORY) s.seqTs.delete(s.seqTs.keys().next().value!);
    let f = s.frames.get(pkt.timestamp);
    if (!f) {
      f = { packets: new Map(), firstAt: now };
      s.frames.set(pkt.timestamp, f);
    }
    if (f.packets.has(seq)) return;
    f.packets.set(seq, pkt.payload.slice());
    if (pkt.marker) f.endSeq = seq;
    if (codec === 'vp8' && vp8StartsFrame(pkt.payload)) f.startSeq = seq;
    this.#tryComplete(s, pkt.ssrc, pkt.timestamp, f);
    // An H.264 frame starts after a packet of another frame: this packet may tell the next frame where it starts.
    if (codec === 'h264') {
      const next = s.seqTs.get(seq + 1);
      if (next !== undefined && next !== pkt.timestamp) {
        const nf = s.frames.get(next);
        if (nf) this.#tryComplete(s, pkt.ssrc, next, nf);
      }
    }
  }

  #tryComplete(s: SsrcState, ssrc: number, timestamp: number, f: PendingFrame): void {
    if (f.endSeq === undefined) return;
    if (s.codec === 'h264' && f.startSeq === undefined) {
      // The first packet of this frame is the one whose predecessor belongs to another frame.
      const seq = Math.min(...f.packets.keys());
      const before = s.seqTs.get(seq - 1);
      if (before === undefined || before === timestamp) return;
      f.startSeq = seq;
    }
    if (f.startSeq === undefined || f.endSeq < f.startSeq) return;
    const payloads: Uint8Array[] = [];
    for (let seq = f.startSeq; seq <= f.endSeq; seq++) {
      const p = f.packets.get(seq);
      if (!p) return;
      payloads.push(p);
    }
    s.frames.delete(timestamp);
    s.done.set(timestamp, this.#now());
    const data = canonicalFromRtp(s.codec, payloads);
    const key = s.codec === 'vp8' ? data.length > 0 && (data[0]! & 0x01) === 0 : h264HasIdr(data);
    this.#onFrame({ ssrc, timestamp, kind: 'video', data, key });
  }

  #sweep(now: number): void {
    this.#lastSweep = now;
    for (const s of this.#ssrcs.values()) {
      for (const [ts, f] of s.frames) if (now - f.firstAt > this.#maxAgeMs) s.frames.delete(ts);
      for (const [k, at] of s.done) if (now - at > this.#maxAgeMs * 2) s.done.delete(k);
    }
  }
}

/** A 16-bit sequence number extended against the highest one seen (wrap-around and reordering). */
function extend(highest: number, seq16: number): number {
  let delta = seq16 - (highest & 0xffff);
  if (delta > 0x8000) delta -= 0x10000;
  else if (delta < -0x8000) delta += 0x10000;
  return highest + delta;
}

/** The fields of an RTP packet (RFC 3550) a frame assembler needs, or undefined if it is not one. */
export function parseRtp(buf: Uint8Array): RtpPacketView | undefined {
  if (buf.length < 12 || buf[0]! >> 6 !== 2) return undefined;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const cc = buf[0]! & 0x0f;
  let o = 12 + cc * 4;
  if (buf[0]! & 0x10) {
    if (o + 4 > buf.length) return undefined;
    o += 4 + v.getUint16(o + 2) * 4;
  }
  let end = buf.length;
  if (buf[0]! & 0x20) end -= buf[end - 1]!;
  if (o > end) return undefined;
  return {
    marker: (buf[1]! & 0x80) !== 0,
    payloadType: buf[1]! & 0x7f,
    sequenceNumber: v.getUint16(2),
    timestamp: v.getUint32(4),
    ssrc: v.getUint32(8),
    payload: buf.subarray(o, end),
  };
}
