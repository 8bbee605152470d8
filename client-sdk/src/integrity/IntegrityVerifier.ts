import {
  CascadeError,
  TypedEmitter,
  decodeBatch,
  digestKey,
  type ErrorCode,
  type IntegrityAnchor,
} from '@cascade/protocol';
import { OriginLayers, type LayerVideo } from './OriginLayers.js';

/**
 * verifying: no frame checked yet; verified: frames match the origin's signed digests;
 * unverified: frames come but no usable signed digests do (a relay withholding, delaying,
 * replaying or forging them); tampered: frames that match no signed digest although the
 * digests around them came (altered, inserted, swapped or replayed frames); unsupported: this
 * client cannot check frames; off: the origin sends no digests (or the caller turned it off).
 */
export type IntegrityState = 'verifying' | 'verified' | 'unverified' | 'tampered' | 'unsupported' | 'off';

export interface IntegrityStatus {
  state: IntegrityState;
  /** Why, when unverified, tampered or unsupported. */
  code?: ErrorCode;
  detail?: string;
  /** Frames that matched a signed digest, that matched none (with digests around them), and dropped unchecked (no digest in time). */
  framesVerified: number;
  framesRejected: number;
  framesExpired: number;
  /** Digest batches that were usable, and that were refused (bad signature, stale, malformed). */
  batches: number;
  batchesRefused: number;
  /** Bytes of digest batches received (what verifying costs in bandwidth, before SCTP/DTLS/UDP framing). */
  batchBytes: number;
  /** Batches that never came (gaps in the sequence between the first and the latest usable one). */
  batchesMissed: number;
  /** The longest wait between two usable batches (local ms): how late the digest channel ran at its worst. */
  batchGapMaxMs: number;
  /** How long after the first frame the digest channel delivered its first message (local ms; absent: not yet). */
  channelAfterMs?: number;
}

export interface IntegrityVerifierOptions {
  streamId: string;
  anchor: IntegrityAnchor;
  /** Local time (ms, same clock as `now`) when the anchor's answer arrived. */
  anchorAt: number;
  /** How long the request that brought the anchor took (ms): bounds how far the origin's clock may be off ours. */
  anchorRttMs: number;
  /** A batch older than this (by the origin's clock) is stale: delayed or replayed (ms). Default 2500. */
  maxBatchAgeMs?: number;
  /** Signed digests are kept this long (ms). Default 4000. */
  windowMs?: number;
  /** A frame that has not verified this long is dropped unchecked (ms). Default 1000. */
  holdMs?: number;
  /** Frames come, none verifies for this long: unverified (ms). Default 700. */
  unverifiedAfterMs?: number;
  /**
   * Before the digest channel delivers, how long frames may come without a batch (ms). The
   * channel is set up after the media, and one SCTP handshake packet lost on a weak link costs a
   * retransmission 3 s later (the initial RTO of usrsctp and werift). Batches handed over by the
   * node (the last second, see addBatch) do not end it. Default 4500.
   */
  firstBatchGraceMs?: number;
  /** How long before a frame reached us the origin may have had it: batches must cover that much before it can be refuted (ms). Default 1500. */
  lookbackMs?: number;
  now?: () => number;
}

export type IntegrityVerifierEvents = {
  /** The state changed (see IntegrityState). */
  status: [status: IntegrityStatus];
  /** A frame submitted was decided: shown (true) or not (false). */
  decision: [id: number, ok: boolean];
  listenererror: [event: string, error: unknown];
};

export type FrameKind = 'audio' | 'video';

interface Pending {
  id: number;
  key: string;
  kind: FrameKind;
  /** Local arrival time. */
  at: number;
  /** The origin's clock at arrival (our estimate: never ahead of the truth). */
  originAt: number;
}

interface ReceivedBatch {
  seq: number;
  originTime: number;
}

/** Grace beyond a frame's estimated origin time before the batches after it say it never existed (ms). */
const REFUTE_MARGIN_MS = 300;
/** A tick this much later than due means the page or process was starved: nothing is judged on it. */
const STARVED_MS = 300;
/** Batches without video frames for this long: the origin's video paused (a broadcaster's encoder or CPU stalled), see originVideoSince (ms). */
export const ORIGIN_VIDEO_GAP_MS = 500;
/**
 * Batches listing video that come without a break this long (ms; they come every 100 ms) are
 * one run, see videoBatchesFlowingSince: a node that re-parents stops them, and a new run begins when
 * its new parent's batches come.
 */
const VIDEO_BATCH_RUN_GAP_MS = 300;

/** Frames of a kind whose latest came longer ago than this (ms) have stopped coming: no unverified call on them (see #judgeMissing). */
const STILL_COMING_MS = 300;

/** Bytes of a base64 string (browsers and Node alike). */
export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Checks the frames one connection receives against the origin's signed digest batches (see
 * protocol's batch.ts). Platform-neutral: the caller hands it the batches from the digest
 * channel, each frame's digest (of its canonical form) with an id, and calls tick() every
 * 100 ms or so; it says which frames to show ('decision') and how things stand ('status').
 *
 * Loss, NACK repair, reordering and layer switches never make a frame fail: a frame is refuted
 * only when the signed batches of the whole time it could have been at the origin have come
 * (each digest travels in two consecutive batches) and it is in none of them. Frames that simply
 * find no digest in time are dropped unchecked, and only a run of them with nothing verifying
 * turns the state to unverified.
 *
 * (Over 350 lines: the refutation rule, the missing-digest judgement, the gap counts and the
 * origin's video runs all read the same list of received batches and waiting frames, kept in
 * step as each batch or frame comes; split, each part would need the others' private state.)
 */
export class IntegrityVerifier extends TypedEmitter<IntegrityVerifierEvents> {
  readonly #o: Required<Omit<IntegrityVerifierOptions, 'anchor' | 'streamId' | 'anchorAt' | 'anchorRttMs'>> & { streamId: string };
  readonly #key: Promise<CryptoKey | undefined>;
  readonly #offset: number;
  readonly #rtt: number;
  /** digest → origin time of the batch that brought it. */
  readonly #window = new Map<string, number>();
  readonly #batches: ReceivedBatch[] = [];
  readonly #seenSeqs = new Set<number>();
  readonly #pending: Pending[] = [];
  #status: IntegrityStatus = { state: 'verifying', framesVerified: 0, framesRejected: 0, framesExpired: 0, batches: 0, batchesRefused: 0, batchBytes: 0, batchesMissed: 0, batchGapMaxMs: 0 };
  #lastProblem: { code: ErrorCode; detail: string } | undefined;
  /** Per kind: when the latest frame that verified arrived (silence repeats: audio may verify while video does not). */
  readonly #lastVerifiedAt: Record<FrameKind, number> = { audio: Number.NEGATIVE_INFINITY, video: Number.NEGATIVE_INFINITY };
  #firstFrameAt: number | undefined;
  #lastFrameAt = Number.NEGATIVE_INFINITY;
  /** Batches refused since the latest usable one, and when that one arrived (local ms). */
  #refusedSinceUsable = 0;
  #lastUsableAt: number | undefined;
  /** Sequence span and arrival of usable batches, for batchesMissed and batchGapMaxMs. */
  #seqRange: { first: number; last: number } | undefined;
  #lastBatchAt: number | undefined;
  #lastTick: number | undefined;
  /** Origin's video frames per batch, latest: whether the origin gets video (for stall checks). */
  #originVideoAt = Number.NEGATIVE_INFINITY;
  /** When the origin's current run of video began (local ms): after a pause of ORIGIN_VIDEO_GAP_MS or more. */
  #originVideoSince = Number.NEGATIVE_INFINITY;
  /** When the current run of batches listing video began to come through this node (local ms), see VIDEO_BATCH_RUN_GAP_MS. */
  #videoBatchesSince = Number.NEGATIVE_INFINITY;
  /** Per video layer: like #originVideoAt, #originVideoSince and #videoBatchesSince, for that layer alone. */
  readonly #layers = new OriginLayers({ pauseMs: ORIGIN_VIDEO_GAP_MS, runGapMs: VIDEO_BATCH_RUN_GAP_MS });
  /** digest → its layer tag, from tagged batches. */
  readonly #tagOf = new Map<string, number>();
  /** The layer tag of the latest video frame that verified (undefined: untagged batches, or none yet). */
  #videoLayer: number | undefined;
  /** The digest channel has delivered something (handed-over batches aside): the first-batch grace is over. */
  #channelDelivered = false;
  #closed = false;

  constructor(options: IntegrityVerifierOptions) {
    super();
    const now = options.now ?? Date.now;
    this.#o = {
      streamId: options.streamId,
      maxBatchAgeMs: options.maxBatchAgeMs ?? 2500,
      windowMs: options.windowMs ?? 4000,
      holdMs: options.holdMs ?? 1000,
      unverifiedAfterMs: options.unverifiedAfterMs ?? 700,
      firstBatchGraceMs: options.firstBatchGraceMs ?? 4500,
      lookbackMs: options.lookbackMs ?? 1500,
      now,
    };
    this.#offset = options.anchor.originTime - options.anchorAt;
    this.#rtt = Math.max(0, Math.min(options.anchorRttMs, 2000));
    this.#key = globalThis.crypto.subtle
      .importKey('spki', fromBase64(options.anchor.publicKey) as BufferSource, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify'])
      .catch(() => {
        this.#problem('CASCADE_ERR_INTEGRITY_MALFORMED', 'the stream key cannot be read');
        return undefined;
      });
  }

  get status(): IntegrityStatus {
    return { ...this.#status };
  }

  /** When the latest usable batch said the origin had received video frames (local ms; -Infinity: never). */
  get originVideoAt(): number {
    return this.#originVideoAt;
  }

  /**
   * Since when (local ms) the origin has been getting video without a pause (batches without
   * video frames for ORIGIN_VIDEO_GAP_MS). A broadcaster whose encoder paused stops the picture
   * of every viewer: a picture is owed only from when the origin's video came back.
   */
  get originVideoSince(): number {
    return this.#originVideoSince;
  }

  /**
   * Since when (local ms) batches listing video have come through this node without a break of
   * VIDEO_BATCH_RUN_GAP_MS, up to now: the node has been passing on the origin's word that video
   * flows. Undefined when they do not come now.
   */
  videoBatchesFlowingSince(now: number, layer?: number): number | undefined {
    const l = layer === undefined ? null : this.#layers.flowingSince(layer, now);
    if (l !== null) return l;
    return now - this.#originVideoAt < VIDEO_BATCH_RUN_GAP_MS ? this.#videoBatchesSince : undefined;
  }

  /**
   * The simulcast layer we were last sent: the tag (FRAME_TAG_VIDEO + index) of the latest video
   * frame that verified. Undefined when the origin does not tag its batches.
   */
  get videoLayer(): number | undefined {
    return this.#videoLayer;
  }

  /**
   * The highest simulcast layer (its index, 0 the lowest) the origin gets now, as its tagged
   * batches say; undefined while they list none (untagged batches, or no video: a broadcaster's
   * pause is not a layer change).
   */
  originTopLayer(now: number): number | undefined {
    return this.#layers.top(now);
  }

  /** How the origin gets one video layer (by its tag), as its batches say; undefined: never listed. */
  layerVideo(layer: number): LayerVideo | undefined {
    return this.#layers.get(layer);
  }

  /**
   * How long frames of one kind have waited with none of that kind verified since (ms; 0 when
   * nothing waits so). At unverifiedAfterMs the node is called unverified.
   */
  get unverifiedForMs(): number {
    const now = this.#o.now();
    let longest = 0;
    for (const kind of ['video', 'audio'] as const) {
      const oldest = this.#pending.find((p) => p.kind === kind);
      if (oldest && this.#lastVerifiedAt[kind] < oldest.at) longest = Math.max(longest, now - oldest.at);
    }
    return longest;
  }

  /** Whether usable batches came lately (within the unverified delay). */
  get digestsFlowing(): boolean {
    const last = this.#batches.at(-1);
    return last !== undefined && this.#originNow() - last.originTime < this.#o.maxBatchAgeMs;
  }

  /**
   * One batch: a message from the digest channel, or one the node handed over ('handover': sent
   * before our channel opened, see integrity.subscribe and integrity.recent).
   */
  async addBatch(bytes: Uint8Array, via: 'channel' | 'handover' = 'channel'): Promise<void> {
    if (this.#closed) return;
    const arrived = this.#o.now();
    if (via === 'channel' && !this.#channelDelivered) {
      this.#channelDelivered = true;
      if (this.#firstFrameAt !== undefined) this.#status.channelAfterMs = arrived - this.#firstFrameAt;
    }
    this.#status.batchBytes += bytes.length;
    let parsed;
    try {
      parsed = decodeBatch(bytes);
    } catch (err) {
      return this.#refuse('CASCADE_ERR_INTEGRITY_MALFORMED', (err as CascadeError).message);
    }
    const { batch, body, signature } = parsed;
    if (batch.streamId !== this.#o.streamId) return this.#refuse('CASCADE_ERR_INTEGRITY_MALFORMED', `a batch of stream ${batch.streamId}`);
    const key = await this.#key;
    if (!key || this.#closed) return;
    let ok = false;
    try {
      ok = await globalThis.crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature as BufferSource, body as BufferSource);
    } catch {
      ok = false;
    }
    if (this.#closed) return;
    if (!ok) return this.#refuse('CASCADE_ERR_INTEGRITY_BAD_SIGNATURE', `batch ${batch.seq}`);
    const age = this.#originNow(arrived) - batch.originTime;
    if (age > this.#o.maxBatchAgeMs) return this.#refuse('CASCADE_ERR_INTEGRITY_STALE', `batch ${batch.seq} is ${Math.round(age)} ms old`);
    if (this.#seenSeqs.has(batch.seq)) return; // a copy of one already taken, still fresh: harmless
    this.#seenSeqs.add(batch.seq);
    if (this.#seenSeqs.size > 512) this.#seenSeqs.delete(this.#seenSeqs.values().next().value!);
    this.#batches.push({ seq: batch.seq, originTime: batch.originTime });
    this.#batches.sort((a, b) => a.seq - b.seq);
    if (batch.videoFrames > 0) {
      if (arrived - this.#originVideoAt >= ORIGIN_VIDEO_GAP_MS) this.#originVideoSince = arrived;
      if (arrived - this.#originVideoAt >= VIDEO_BATCH_RUN_GAP_MS) this.#videoBatchesSince = arrived;
      this.#originVideoAt = Math.max(this.#originVideoAt, arrived);
    }
    this.#status.batches++;
    this.#refusedSinceUsable = 0;
    this.#lastUsableAt = Math.max(this.#lastUsableAt ?? arrived, arrived);
    this.#countGaps(batch.seq, arrived);
    if (batch.layers) this.#layers.note(batch.layers.subarray(0, batch.videoFrames + batch.audioFrames), arrived);
    batch.digests.forEach((d, i) => {
      const k = digestKey(d);
      this.#window.set(k, batch.originTime);
      if (batch.layers) this.#tagOf.set(k, batch.layers[i]!);
    });
    // Frames waiting for these digests can be shown.
    for (let i = 0; i < this.#pending.length; ) {
      const p = this.#pending[i]!;
      if (this.#window.has(p.key)) {
        this.#pending.splice(i, 1);
        // As of the frame's arrival: a late batch vouching for old frames says nothing of the newer ones still waiting.
        this.#verified(p.id, p.kind, p.at, p.key);
      } else i++;
    }
  }

  /** A frame received: its digest (of its canonical form). The decision comes as a 'decision' event. */
  submit(id: number, digest: Uint8Array, kind: FrameKind): void {
    if (this.#closed) return;
    const at = this.#o.now();
    this.#firstFrameAt ??= at;
    this.#lastFrameAt = at;
    const key = digestKey(digest);
    if (this.#window.has(key)) return this.#verified(id, kind, at, key);
    this.#pending.push({ id, key, kind, at, originAt: this.#originNow(at) });
  }

  /** Judge what waits (call every 100 ms or so). */
  tick(): void {
    if (this.#closed) return;
    const now = this.#o.now();
    const last = this.#lastTick;
    this.#lastTick = now;
    // Starved (a busy page, a paused tab): batches may be queued unread; judge next time.
    if (last !== undefined && now - last > STARVED_MS) return;
    const originNow = this.#originNow(now);
    for (const [k, t] of this.#window) {
      if (originNow - t <= this.#o.windowMs) continue;
      this.#window.delete(k);
      this.#tagOf.delete(k);
    }
    while (this.#batches.length > 0 && originNow - this.#batches[0]!.originTime > this.#o.windowMs) this.#batches.shift();
    for (let i = 0; i < this.#pending.length; ) {
      const p = this.#pending[i]!;
      if (this.#refutable(p)) {
        this.#pending.splice(i, 1);
        this.#status.framesRejected++;
        this.safeEmit('decision', p.id, false);
        this.#setState('tampered', 'CASCADE_ERR_INTEGRITY_FRAME_MISMATCH', 'frames that match no signed digest');
      } else if (now - p.at > this.#o.holdMs) {
        this.#pending.splice(i, 1);
        this.#status.framesExpired++;
        this.safeEmit('decision', p.id, false);
      } else i++;
    }
    this.#judgeMissing(now);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.splice(0)) this.safeEmit('decision', p.id, false);
    this.#window.clear();
    this.#tagOf.clear();
    this.removeAllListeners();
  }

  /**
   * Frames of one kind keep coming and none of them verifies: the digests are withheld, late,
   * forged or replayed. Per kind, because identical frames recur (audio silence): an old digest
   * may still vouch for them while nothing new does.
   */
  #judgeMissing(now: number): void {
    if (this.#onlyRefused(now)) return this.#setState('unverified', this.#lastProblem!.code, this.#lastProblem!.detail);
    for (const kind of ['video', 'audio'] as const) {
      const waiting = this.#pending.filter((p) => p.kind === kind);
      const oldest = waiting[0];
      if (!oldest || waiting.length < 3) continue;
      if (this.#lastVerifiedAt[kind] >= oldest.at || now - oldest.at < this.#o.unverifiedAfterMs) continue;
      // Frames no longer come either: the node (or one above it) stopped altogether, frozen or cut
      // off, the batches for its last frames behind them. That is a stopped picture (the stall
      // check's), not digests withheld from frames that keep coming. Traced: every viewer below a
      // frozen relay, its child's included, called its node unverified 0.7 s after the freeze.
      if (now - waiting.at(-1)!.at > STILL_COMING_MS) continue;
      // The digest channel is set up after the media: give its first batch time to come.
      if (!this.#channelDelivered && this.#status.batchesRefused === 0 && now - this.#firstFrameAt! < this.#o.firstBatchGraceMs) return;
      const why = this.#lastProblem ?? { code: 'CASCADE_ERR_INTEGRITY_DIGESTS_MISSING' as ErrorCode, detail: `no signed digest for ${waiting.length} ${kind} frames` };
      this.#setState('unverified', why.code, why.detail);
      return;
    }
  }

  /**
   * Frames still come, and for unverifiedAfterMs every batch has been refused (stale, replayed,
   * badly signed, another stream's): the digests are as good as withheld. Not left to the
   * pile-up of waiting frames: traced in the replay test, a relay replaying 10 s old media let
   * only a few video frames through (fewer than three waiting at once) while repeated audio
   * verified, and its viewers took 2.8 to 4.3 s to call it unverified.
   */
  #onlyRefused(now: number): boolean {
    if (this.#refusedSinceUsable < 3 || now - this.#lastFrameAt > STILL_COMING_MS) return false;
    const since = this.#lastUsableAt ?? this.#firstFrameAt;
    return since !== undefined && now - since >= this.#o.unverifiedAfterMs;
  }

  /**
   * Whether the batches of the whole time the origin may have had this frame have come (no two
   * consecutive ones missing) and the frame is in none of them.
   */
  #refutable(p: Pending): boolean {
    const b = this.#batches;
    if (b.length === 0) return false;
    const from = p.originAt - this.#o.lookbackMs;
    const to = p.originAt + this.#rtt + REFUTE_MARGIN_MS;
    if (b.at(-1)!.originTime < to) return false;
    // Coverage must start before the frame could have been at the origin (a batch holds two periods).
    const interval = b.length > 1 ? Math.max(1, (b.at(-1)!.originTime - b[0]!.originTime) / Math.max(1, b.at(-1)!.seq - b[0]!.seq)) : 100;
    if (b[0]!.originTime - 2 * interval > from) return false;
    let prev: ReceivedBatch | undefined;
    for (const x of b) {
      if (x.originTime < from - interval) {
        prev = x;
        continue;
      }
      if (prev && x.seq - prev.seq > 2) return false;
      prev = x;
      if (x.originTime > to + interval) break;
    }
    return true;
  }

  #countGaps(seq: number, arrived: number): void {
    const r = (this.#seqRange ??= { first: seq, last: seq });
    r.first = Math.min(r.first, seq);
    r.last = Math.max(r.last, seq);
    this.#status.batchesMissed = Math.max(0, r.last - r.first + 1 - this.#status.batches);
    if (this.#lastBatchAt !== undefined) this.#status.batchGapMaxMs = Math.max(this.#status.batchGapMaxMs, arrived - this.#lastBatchAt);
    this.#lastBatchAt = arrived;
  }

  #verified(id: number, kind: FrameKind, at: number, key: string): void {
    this.#lastVerifiedAt[kind] = at;
    if (kind === 'video') this.#videoLayer = this.#tagOf.get(key) ?? this.#videoLayer;
    this.#status.framesVerified++;
    this.safeEmit('decision', id, true);
    if (this.#status.state === 'verifying') this.#setState('verified');
  }

  #refuse(code: ErrorCode, detail: string): void {
    this.#status.batchesRefused++;
    this.#refusedSinceUsable++;
    this.#problem(code, detail);
  }

  #problem(code: ErrorCode, detail: string): void {
    this.#lastProblem = { code, detail };
  }

  #setState(state: IntegrityState, code?: ErrorCode, detail?: string): void {
    // What went wrong on a connection stays: a relay that tampers or withholds now and then is
    // not trusted again (the viewer leaves it anyway); only tampered outranks unverified.
    const was = this.#status.state;
    if (was === state || was === 'tampered' || (was === 'unverified' && state !== 'tampered')) return;
    this.#status = { ...this.#status, state, ...(code ? { code } : { code: undefined }), ...(detail ? { detail } : { detail: undefined }) };
    this.safeEmit('status', this.status);
  }

  #originNow(local = this.#o.now()): number {
    return local + this.#offset;
  }
}
