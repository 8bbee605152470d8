import { LogHistogram } from './LogHistogram.js';
import type { Summary } from './stats.js';

/** What the accounting needs of one received RTP packet. */
export interface RtpPacketInfo {
  ssrc: number;
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  /** Packet size on the wire without SRTP overhead, header included. */
  bytes: number;
}

export interface RtpReceiveStatsOptions {
  /** RTP clock of the stream, Hz. Default 90000 (video). */
  clockRate?: number;
  /** A gap between two completed frames longer than this counts as a freeze, ms. Default 500. */
  freezeGapMs?: number;
  /**
   * The sender stamped its wall clock into the RTP timestamp (ts = ms·clockRate/1000 mod 2^32),
   * so the delay is `now − ts`. Only true for our own synthetic broadcaster. Default false.
   */
  stamped?: boolean;
}

/** Counters since the previous `takeInterval()`. */
export interface RtpInterval {
  packets: number;
  bytes: number;
  /** RFC 3550 A.3: packets expected and lost in the interval (lost may be < 0 after duplicates/reordering). */
  expected: number;
  lost: number;
  frames: number;
}

export interface RtpReceiveSummary {
  packets: number;
  bytes: number;
  duplicates: number;
  expected: number;
  lost: number;
  /** lost / expected, 0..1. */
  lossFraction: number;
  /** Wall-clock ms of the first packet and first completed frame, or null. */
  firstPacketAt: number | null;
  firstFrameAt: number | null;
  lastPacketAt: number | null;
  frames: number;
  /** Mean received bitrate between the first and last packet, kbit/s. */
  bitrateKbps: number;
  /** RFC 3550 interarrival jitter at the end of the run and its maximum, ms. */
  jitterMs: number;
  jitterMaxMs: number;
  freezes: number;
  freezeTotalMs: number;
  longestFreezeMs: number;
  /** End-to-end delay per completed frame, ms; null unless stamped. */
  delay: Summary | null;
  /** Frames whose stamp was more than a minute off: the stream is not stamped. */
  implausibleDelays: number;
}

const DUP_WINDOW = 1024;
/** A stamp further than this from now is not ours (the stream is not stamped), ms. */
const PLAUSIBLE_DELAY_MS = 60_000;

/**
 * Per-viewer accounting of one received RTP stream: loss from sequence gaps (RFC 3550 A.1/A.3),
 * interarrival jitter (A.8), frames by marker bit, freezes, and delay from stamped timestamps.
 * A new SSRC (the SDK moved to another node) starts a new sequence space; totals carry on.
 */
export class RtpReceiveStats {
  readonly #clockRate: number;
  readonly #freezeGapMs: number;
  readonly #stamped: boolean;

  // current source
  #ssrc: number | undefined;
  #baseExt = 0;
  #maxExt = -1;
  #received = 0;
  #seen = new Float64Array(DUP_WINDOW).fill(-1);
  #lastTransit: number | undefined;
  #lastJitterTs: number | undefined;

  // sources that ended
  #closedExpected = 0;
  #closedReceived = 0;

  // totals
  #packets = 0;
  #bytes = 0;
  #duplicates = 0;
  #frames = 0;
  #firstPacketAt: number | null = null;
  #firstFrameAt: number | null = null;
  #lastPacketAt: number | null = null;
  #lastFrameAt: number | null = null;
  #jitter = 0;
  #jitterMax = 0;
  #freezes = 0;
  #freezeTotalMs = 0;
  #longestFreezeMs = 0;
  #implausible = 0;
  #delay = new LogHistogram();

  // interval
  #iv = { packets: 0, bytes: 0, frames: 0, expectedPrior: 0, receivedPrior: 0 };
  #ivDelay = new LogHistogram();

  constructor(options: RtpReceiveStatsOptions = {}) {
    this.#clockRate = options.clockRate ?? 90000;
    this.#freezeGapMs = options.freezeGapMs ?? 500;
    this.#stamped = options.stamped ?? false;
  }

  get packets(): number {
    return this.#packets;
  }
  get frames(): number {
    return this.#frames;
  }

  /** Account one packet that arrived at wall-clock `arrivalMs`. */
  onPacket(p: RtpPacketInfo, arrivalMs: number): void {
    if (p.ssrc !== this.#ssrc) this.#newSource(p.ssrc);
    const ext = this.#extend(p.sequenceNumber);
    const slot = ext % DUP_WINDOW;
    if (this.#seen[slot] === ext) {
      this.#duplicates++;
      return;
    }
    this.#seen[slot] = ext;
    const inOrder = ext > this.#maxExt;
    if (this.#maxExt < 0) this.#baseExt = ext;
    else if (ext < this.#baseExt) this.#baseExt = ext;
    if (inOrder) this.#maxExt = ext;
    this.#received++;

    this.#packets++;
    this.#bytes += p.bytes;
    this.#iv.packets++;
    this.#iv.bytes += p.bytes;
    this.#firstPacketAt ??= arrivalMs;
    this.#lastPacketAt = arrivalMs;

    // libwebrtc skips packets that share the previous timestamp: a frame's packets leave in
    // one burst, and their spread is pacing, not network jitter.
    if (inOrder && p.timestamp !== this.#lastJitterTs) this.#updateJitter(p.timestamp, arrivalMs);

    if (p.marker) this.#onFrame(p.timestamp, arrivalMs);
  }

  /** Close the books at `nowMs`: a stream that stopped delivering frames ends in a freeze. */
  finish(nowMs: number): void {
    if (this.#lastFrameAt !== null) this.#checkGap(nowMs - this.#lastFrameAt);
    this.#lastFrameAt = nowMs;
  }

  /** Counters since the last call; the interval's delays are merged into `delaySink`. */
  takeInterval(delaySink?: LogHistogram): RtpInterval {
    const expected = this.#totalExpected();
    const received = this.#closedReceived + this.#received;
    const out: RtpInterval = {
      packets: this.#iv.packets,
      bytes: this.#iv.bytes,
      frames: this.#iv.frames,
      expected: expected - this.#iv.expectedPrior,
      lost: expected - this.#iv.expectedPrior - (received - this.#iv.receivedPrior),
    };
    delaySink?.merge(this.#ivDelay);
    this.#ivDelay.reset();
    this.#iv = { packets: 0, bytes: 0, frames: 0, expectedPrior: expected, receivedPrior: received };
    return out;
  }

  /** The whole-run delay histogram (for merging across viewers). */
  get delayHistogram(): LogHistogram {
    return this.#delay;
  }

  summary(): RtpReceiveSummary {
    const expected = this.#totalExpected();
    const lost = Math.max(0, expected - this.#closedReceived - this.#received);
    const spanMs = this.#firstPacketAt !== null && this.#lastPacketAt !== null ? this.#lastPacketAt - this.#firstPacketAt : 0;
    return {
      packets: this.#packets,
      bytes: this.#bytes,
      duplicates: this.#duplicates,
      expected,
      lost,
      lossFraction: expected > 0 ? lost / expected : 0,
      firstPacketAt: this.#firstPacketAt,
      firstFrameAt: this.#firstFrameAt,
      lastPacketAt: this.#lastPacketAt,
      frames: this.#frames,
      bitrateKbps: spanMs > 0 ? (this.#bytes * 8) / spanMs : 0,
      jitterMs: this.#toMs(this.#jitter),
      jitterMaxMs: this.#toMs(this.#jitterMax),
      freezes: this.#freezes,
      freezeTotalMs: this.#freezeTotalMs,
      longestFreezeMs: this.#longestFreezeMs,
      delay: this.#stamped ? this.#delay.summary() : null,
      implausibleDelays: this.#implausible,
    };
  }

  #newSource(ssrc: number): void {
    this.#closedExpected = this.#totalExpected();
    this.#closedReceived += this.#received;
    this.#ssrc = ssrc;
    this.#baseExt = 0;
    this.#maxExt = -1;
    this.#received = 0;
    this.#seen.fill(-1);
    this.#lastTransit = undefined;
    this.#lastJitterTs = undefined;
  }

  #totalExpected(): number {
    return this.#closedExpected + (this.#maxExt >= 0 ? this.#maxExt - this.#baseExt + 1 : 0);
  }

  /** Extended sequence number: the 16-bit value placed in the cycle closest to the highest seen. */
  #extend(seq: number): number {
    // Start in a high cycle so that packets reordered before the first one stay non-negative.
    if (this.#maxExt < 0) return 65536 + seq;
    let diff = seq - (this.#maxExt & 0xffff);
    if (diff > 32768) diff -= 65536;
    else if (diff < -32768) diff += 65536;
    return Math.max(0, this.#maxExt + diff);
  }

  #updateJitter(ts: number, arrivalMs: number): void {
    const arrival = Math.round((arrivalMs * this.#clockRate) / 1000) >>> 0;
    const transit = (arrival - ts) >>> 0;
    if (this.#lastTransit !== undefined) {
      const d = Math.abs((transit - this.#lastTransit) | 0);
      this.#jitter += (d - this.#jitter) / 16;
      if (this.#jitter > this.#jitterMax) this.#jitterMax = this.#jitter;
    }
    this.#lastTransit = transit;
    this.#lastJitterTs = ts;
  }

  #onFrame(ts: number, arrivalMs: number): void {
    this.#frames++;
    this.#iv.frames++;
    this.#firstFrameAt ??= arrivalMs;
    if (this.#lastFrameAt !== null) this.#checkGap(arrivalMs - this.#lastFrameAt);
    this.#lastFrameAt = arrivalMs;
    if (!this.#stamped) return;
    const now = Math.round((arrivalMs * this.#clockRate) / 1000) >>> 0;
    const delayMs = this.#toMs((now - ts) | 0);
    if (Math.abs(delayMs) > PLAUSIBLE_DELAY_MS) {
      this.#implausible++;
      return;
    }
    // Stamp and arrival share one clock, so a negative value is rounding: count it as 0.
    this.#delay.add(Math.max(0, delayMs));
    this.#ivDelay.add(Math.max(0, delayMs));
  }

  #checkGap(gapMs: number): void {
    if (gapMs <= this.#freezeGapMs) return;
    this.#freezes++;
    this.#freezeTotalMs += gapMs;
    if (gapMs > this.#longestFreezeMs) this.#longestFreezeMs = gapMs;
  }

  #toMs(units: number): number {
    return (units * 1000) / this.#clockRate;
  }
}
