import { canonicalFromRtp, vp8StartsFrame, type FrameCodec } from './frames.js';

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
  /** Canonical form (see the module comment of frames.ts). */
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

const H264_IDR = 5;

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
