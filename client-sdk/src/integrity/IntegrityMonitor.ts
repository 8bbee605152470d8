import type { types as msc } from 'mediasoup-client';
import { DIGEST_BYTES, TypedEmitter, canonicalFromEncoded, frameCodecOf, type IntegrityAnchor, type FrameCodec } from '@cascade/protocol';
import { BrowserFrameSource, ENCODED_STREAMS_SETTINGS, encodedStreamsAvailable } from './browserFrames.js';
import { IntegrityVerifier, ORIGIN_VIDEO_GAP_MS, fromBase64, type IntegrityStatus } from './IntegrityVerifier.js';
import { rtpTrackAvailable, watchRtpFrames } from './rtpFrames.js';
import type { SignalClient } from '../SignalClient.js';

/** How a viewer checks what it receives (the `integrity` option of watch()). */
export interface IntegrityOptions {
  /** Check frames against the origin's signed digests (where the origin sends them). Default true. */
  enabled?: boolean;
  /**
   * Browsers: show a frame only once it verified (false: show every frame at once and only
   * report; the state still says whether they verify). Default true.
   */
  hold?: boolean;
  /**
   * The picture has stopped this long while the stream is live: move elsewhere (ms). Default
   * 1200; 2500 more while video packets still arrive (a key frame being waited for); half of it
   * when no video comes at all to consumers that were delivering while the node passes on the
   * origin's batches listing video of our simulcast layer (and has answered a ping since our last
   * packet). Counted from when the origin's video, or our layer's, came back after a pause.
   */
  stallAfterMs?: number;
}

export type IntegrityMonitorEvents = {
  status: [status: IntegrityStatus];
  /**
   * Nothing new decoded for stallAfterMs while the stream is live and its origin gets video. Once
   * per connection; `detail` says what was measured (for the viewer's report and the operator's log).
   */
  stalled: [detail: string];
  /**
   * The picture has stopped while video packets still come: ask the node for a key frame over
   * signalling (the decoder's own request travels as RTCP over the same weak link and may be
   * lost; a browser asks again only after 3 s). Every stallAfterMs while it lasts.
   */
  keyframewanted: [];
  /**
   * The highest simulcast layer the origin gets changed (undefined: unknown, or no video now):
   * the broadcaster stopped sending its top layers (its uplink dipped) or sends them again.
   */
  originlayers: [top: number | undefined];
  listenererror: [event: string, error: unknown];
};

const TICK_MS = 100;
/**
 * Frames have waited this long for their digests (ms): the batches may be stuck on the digest
 * channel (an SCTP retransmission waits a second or more, and the channel gives each message one
 * retransmission only), so the node is asked over signalling for the ones it passed on lately
 * (integrity.recent), at most every RECENT_AGAIN_MS. A node that withholds them is no better off:
 * what it hands over is signed and dated by the origin, and unverified still comes at 700 ms.
 * Seen in the failover benchmark: werift viewers calling honest relays unverified ("no signed
 * digest for 20 video frames") a few seconds after moving to them.
 */
const ASK_RECENT_AFTER_MS = 350;
const RECENT_AGAIN_MS = 500;
const STALL_CHECK_MS = 250;
/** A check this much later than due: the page or process was starved (its stats and timers late), nothing is judged on it. */
const STARVED_MS = 300;
/** Before the first decoded frame, how long a connection may take to show one (ms). */
const FIRST_FRAME_GRACE_MS = 6000;
/**
 * Packets still come but nothing decodes: the decoder waits for a key frame after a loss that
 * could not be repaired (asked from the broadcaster through every hop, throttled per layer at the
 * origin, and sent back over the same lossy links). That much longer before a stall is called:
 * on weak links it happens every few minutes and is no fault of the node (ms).
 */
const KEY_FRAME_WAIT_MS = 2500;

/**
 * One viewer connection's checks: the frames of its consumers (an encoded transform in a
 * browser, the RTP in Node) against the digest channel, and whether its picture moves at all.
 */
export class IntegrityMonitor extends TypedEmitter<IntegrityMonitorEvents> {
  readonly #verifier: IntegrityVerifier | undefined;
  readonly #options: Required<IntegrityOptions>;
  readonly #browser: BrowserFrameSource | undefined;
  readonly #tids = new Map<number, number>();
  readonly #codecs = new Map<number, { codec: FrameCodec; kind: 'audio' | 'video' }>();
  readonly #consumers: msc.Consumer[] = [];
  readonly #stops: (() => void)[] = [];
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #status: IntegrityStatus;
  #nextId = 1;
  /** Video frames decoded (browsers) or complete (Node): the picture's progress. */
  #progress = 0;
  #progressAt: number;
  /** Video packets received: whether media still arrives while nothing decodes. */
  #arrived = 0;
  #arrivedAt: number;
  /** Node: complete video frames so far, and video packets (whole frames or not: a frame missing a packet waits for its repair or the next key frame). */
  #nodeFrames = 0;
  #nodePackets = 0;
  #sawFrame = false;
  /**
   * The live video consumers at the last check (their ids) and when the origin's current run of
   * video began, the packets counted when either changed, and whether any came since: a new
   * consumer owes nothing until its first key frame (a node that changed parents replaces its
   * viewers' consumers, and the key frame may take a second), nor does one whose broadcaster just
   * came back from a pause (mediasoup drops the layers of a source silent for 1.5 s and picks one
   * again at its next key frame), so a node is judged as withholding video only on consumers
   * that have delivered since.
   */
  #videoSet = '';
  #videoSetOriginSince = Number.NEGATIVE_INFINITY;
  #videoSetPackets = 0;
  #videoSetFlowed = false;
  /** When a frame (audio or video) last arrived, where frames are seen (see lastMediaAt). */
  #mediaAt: number | undefined;
  #live = false;
  /** The media transport is connected: before that (or while it is not), no picture is owed. */
  #connected = false;
  #lastCheckAt: number | undefined;
  /** Key frame requests the browser had sent when the picture last moved. */
  #keyFrameRequestsAtProgress = 0;
  /** Since the picture last moved: key frames asked of the node (keyframewanted), and when last. */
  #keyFramesAsked = 0;
  #keyFrameAskedAt = 0;
  #stalled = false;
  /** The signalling to the node, once the digest channel is set up (for integrity.recent). */
  #signal: SignalClient | undefined;
  #recentAskedAt = 0;
  /** What originlayers last said. */
  #originTop: number | undefined;
  #closed = false;

  constructor(p: { streamId: string; anchor: IntegrityAnchor | undefined; anchorAt: number; anchorRttMs: number; options?: IntegrityOptions }) {
    super();
    this.#options = { enabled: p.options?.enabled ?? true, hold: p.options?.hold ?? true, stallAfterMs: p.options?.stallAfterMs ?? 1200 };
    this.#progressAt = this.#arrivedAt = Date.now();
    const browser = typeof document !== 'undefined';
    const unsupported = browser && !encodedStreamsAvailable();
    const empty = { framesVerified: 0, framesRejected: 0, framesExpired: 0, batches: 0, batchesRefused: 0, batchBytes: 0, batchesMissed: 0, batchGapMaxMs: 0 };
    if (!p.anchor || !this.#options.enabled) {
      this.#status = { state: 'off', ...empty };
    } else if (unsupported) {
      this.#status = { state: 'unsupported', code: 'CASCADE_ERR_INTEGRITY_UNSUPPORTED', detail: 'this browser has no encoded streams', ...empty };
    } else {
      const v = new IntegrityVerifier({ streamId: p.streamId, anchor: p.anchor, anchorAt: p.anchorAt, anchorRttMs: p.anchorRttMs });
      this.#verifier = v;
      this.#status = v.status;
      v.on('status', (s) => {
        this.#status = s;
        this.safeEmit('status', s);
      });
      v.on('decision', (id, ok) => {
        const tid = this.#tids.get(id);
        this.#tids.delete(id);
        if (tid !== undefined) this.#browser?.decide(tid, id, ok);
      });
      if (browser) this.#browser = new BrowserFrameSource((f) => void this.#onEncoded(f.tid, f.id, f.data));
      this.#timers.push(
        setInterval(() => {
          v.tick();
          this.#askRecentIfStuck(v);
          const top = v.originTopLayer(Date.now());
          if (top !== this.#originTop) this.safeEmit('originlayers', (this.#originTop = top));
        }, TICK_MS),
      );
    }
    this.#timers.push(setInterval(() => void this.#checkStall(), STALL_CHECK_MS));
    for (const t of this.#timers) (t as { unref?: () => void }).unref?.();
  }

  /**
   * When the last frame of any kind arrived (ms), read off the frames this monitor sees anyway:
   * undefined where it sees none (a browser with integrity off or unsupported, or no frame yet).
   */
  get lastMediaAt(): number | undefined {
    return this.#mediaAt;
  }

  /** What the recv transport's RTCPeerConnection needs (browsers: encoded streams for frames to be read). */
  get peerConnectionSettings(): Record<string, unknown> {
    return this.#browser ? { ...ENCODED_STREAMS_SETTINGS } : {};
  }

  /** The current state, with counts up to now. */
  get status(): IntegrityStatus {
    return this.#verifier ? this.#verifier.status : { ...this.#status };
  }

  /** Whether the stream is live (a picture is expected). */
  setLive(live: boolean): void {
    if (live && !this.#live) this.#progressAt = this.#arrivedAt = Date.now();
    this.#live = live;
  }

  /**
   * Whether the media transport is connected. A transport that never connects (its handshake
   * lost on a weak link) fails by itself as a connection problem; it is not the node stopping
   * the picture, and no stall is called for it.
   */
  setMediaConnected(connected: boolean): void {
    if (connected && !this.#connected) this.#progressAt = this.#arrivedAt = Date.now();
    this.#connected = connected;
  }

  /** A new consumer, before it is resumed: its frames are checked from the first. */
  attach(consumer: msc.Consumer): void {
    if (this.#closed) return;
    this.#consumers.push(consumer);
    const codec = frameCodecOf(consumer.rtpParameters.codecs[0]?.mimeType ?? '');
    if (this.#browser && consumer.rtpReceiver) {
      // Every receiver goes through the worker (with encoded streams on, one left alone shows nothing); frames of codecs we cannot check pass.
      const tid = this.#browser.attach(consumer.rtpReceiver, this.#options.hold && codec !== undefined);
      if (codec) this.#codecs.set(tid, { codec, kind: consumer.kind });
    } else if (typeof document === 'undefined' && rtpTrackAvailable(consumer.track)) {
      // Node: the RTP is there to rebuild frames from (werift).
      this.#stops.push(
        watchRtpFrames(
          consumer.track,
          consumer.rtpParameters.codecs,
          (f) => {
            this.#mediaAt = Date.now();
            if (f.kind === 'video') this.#nodeFrames++;
            if (this.#verifier) void this.#digest(f.data).then((d) => this.#verifier!.submit(this.#nextId++, d, f.kind));
          },
          consumer.kind === 'video' ? () => this.#nodePackets++ : undefined,
        ),
      );
    }
  }

  /** Receive the stream's digest channel on `transport` (after the media consumers). */
  async subscribeDigests(signal: SignalClient, transport: msc.Transport): Promise<void> {
    if (!this.#verifier || this.#closed) return;
    try {
      const { dataConsumer: d, recent } = await signal.request('integrity.subscribe', { transportId: transport.id });
      const dc = await transport.consumeData({
        id: d.id,
        dataProducerId: d.dataProducerId,
        sctpStreamParameters: d.sctpStreamParameters as msc.SctpStreamParameters,
        label: d.label,
        protocol: d.protocol,
      });
      if (this.#closed) return dc.close();
      this.#signal = signal;
      let first = true;
      dc.on('message', (m: unknown) => {
        void this.#onBatch(m);
        // The channel is up now; what was sent while it was being set up never came on it: ask for it (once).
        if (first) {
          first = false;
          signal.request('integrity.recent', {}).then((r) => this.#addRecent(r.recent), () => {});
        }
      });
      this.#stops.push(() => dc.close());
      // The batches of the last second, sent before our channel opened: the frames already here verify now.
      await this.#addRecent(recent ?? []);
    } catch {
      // A node that refuses the digest channel gets judged like one that withholds it: no batches come.
    }
  }

  /** Frames wait for their digests (see ASK_RECENT_AFTER_MS): ask the node for what it passed on lately. */
  #askRecentIfStuck(v: IntegrityVerifier): void {
    const signal = this.#signal;
    const now = Date.now();
    if (!signal || this.#closed || v.unverifiedForMs < ASK_RECENT_AFTER_MS || now - this.#recentAskedAt < RECENT_AGAIN_MS) return;
    this.#recentAskedAt = now;
    signal.request('integrity.recent', {}).then((r) => this.#addRecent(r.recent), () => {});
  }

  /** Batches handed over by the node (base64), as if they had come on the channel. */
  async #addRecent(recent: string[]): Promise<void> {
    for (const b of recent) {
      let bytes: Uint8Array;
      try {
        bytes = fromBase64(b);
      } catch {
        continue; // not base64: the node's problem, judged like a batch that never came
      }
      await this.#verifier?.addBatch(bytes, 'handover');
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    for (const stop of this.#stops) stop();
    this.#verifier?.close();
    this.#browser?.close();
    this.removeAllListeners();
  }

  async #onBatch(m: unknown): Promise<void> {
    let bytes: Uint8Array | undefined;
    if (m instanceof ArrayBuffer) bytes = new Uint8Array(m);
    else if (ArrayBuffer.isView(m)) bytes = new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
    else if (typeof Blob !== 'undefined' && m instanceof Blob) bytes = new Uint8Array(await m.arrayBuffer());
    if (bytes) await this.#verifier?.addBatch(bytes);
  }

  async #onEncoded(tid: number, id: number, data: Uint8Array): Promise<void> {
    this.#mediaAt = Date.now();
    const receiver = this.#codecs.get(tid);
    if (!receiver || !this.#verifier) return this.#browser?.decide(tid, id, true);
    this.#tids.set(id, tid);
    this.#verifier.submit(id, await this.#digest(canonicalFromEncoded(receiver.codec, data)), receiver.kind);
  }

  async #digest(data: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', data as BufferSource)).subarray(0, DIGEST_BYTES);
  }

  /**
   * Nothing new decoded for a while although the stream is live and its origin gets video: the
   * node fails us. Longer while packets still come (a key frame on its way, see KEY_FRAME_WAIT_MS).
   */
  async #checkStall(): Promise<void> {
    if (this.#closed || this.#stalled) return;
    const video = this.#consumers.filter((c) => !c.closed && c.kind === 'video');
    const { decoded, packets, keyFrameRequests } = typeof document !== 'undefined' ? await videoStats(video) : { decoded: this.#nodeFrames, packets: this.#nodePackets, keyFrameRequests: 0 };
    const now = Date.now();
    const last = this.#lastCheckAt;
    this.#lastCheckAt = now;
    if (last !== undefined && now - last > STALL_CHECK_MS + STARVED_MS) {
      // Starved (a busy machine, a background tab): what the stats say of the gap is no fault of the node.
      this.#progressAt = this.#arrivedAt = now;
      return;
    }
    const videoSet = video.map((c) => c.id).join();
    const originSince = this.#verifier?.originVideoSince ?? Number.NEGATIVE_INFINITY;
    if (videoSet !== this.#videoSet || originSince !== this.#videoSetOriginSince) {
      this.#videoSet = videoSet;
      this.#videoSetOriginSince = originSince;
      this.#videoSetPackets = packets;
      this.#videoSetFlowed = false;
    }
    this.#videoSetFlowed ||= packets > this.#videoSetPackets;
    if (packets !== this.#arrived) {
      this.#arrived = packets;
      this.#arrivedAt = now;
    }
    if (decoded !== this.#progress) {
      this.#progress = decoded;
      this.#progressAt = now;
      this.#keyFrameRequestsAtProgress = keyFrameRequests;
      this.#keyFramesAsked = 0;
      this.#sawFrame ||= decoded > 0;
      return;
    }
    if (!this.#live || !this.#connected || video.length === 0) {
      this.#progressAt = this.#arrivedAt = now;
      return;
    }
    // Only a picture the origin really has counts as stopped here (a broadcaster whose camera froze
    // stops it everywhere): the origin's batches said video a moment ago, and the picture is owed
    // only from when its video last came back after a pause (a broadcaster starved for a second
    // stopped every viewer's picture for that second); likewise for our simulcast layer alone.
    const v = this.#verifier;
    const originHasVideo = !v || now - v.originVideoAt < ORIGIN_VIDEO_GAP_MS;
    const limit = this.#sawFrame ? this.#options.stallAfterMs : FIRST_FRAME_GRACE_MS;
    const arriving = now - this.#arrivedAt < limit;
    if (!originHasVideo) return;
    const layer = v?.videoLayer;
    const stoppedFor = now - Math.max(this.#progressAt, v ? v.originVideoSince : Number.NEGATIVE_INFINITY, layerOwedFrom(v, layer, now));
    if (arriving && this.#sawFrame && stoppedFor >= limit && now - this.#keyFrameAskedAt >= limit) {
      this.#keyFramesAsked++;
      this.#keyFrameAskedAt = now;
      this.safeEmit('keyframewanted');
    }
    // The node passes on the origin's batches, which say our layer's video flows, yet the video consumers that
    // were delivering have had none since those batches began: it withholds the media (a black
    // hole, a layer it stopped forwarding). Called in half the time. A node that changes parents
    // replaces our consumers (owed nothing before their first key frame, see #videoSet), and
    // says so on signalling: only once the node has answered a ping sent after our last video
    // packet do we know that no such notice is still on its way (a slow signalling link, a
    // loaded endpoint) while the batches run on.
    const answeredPingAt = this.#signal?.answeredPingSentAt;
    const nodeHeardSince = answeredPingAt !== undefined && answeredPingAt > this.#arrivedAt;
    const batchesSince = v && this.#sawFrame && this.#videoSetFlowed && nodeHeardSince ? v.videoBatchesFlowingSince(now, layer) : undefined;
    const withheldFor = batchesSince === undefined ? 0 : now - Math.max(this.#arrivedAt, batchesSince);
    if (withheldFor < limit / 2 && stoppedFor < limit + (arriving ? KEY_FRAME_WAIT_MS : 0)) return;
    this.#stalled = true;
    const requests = keyFrameRequests - this.#keyFrameRequestsAtProgress;
    const resumed = stoppedFor < now - this.#progressAt ? ` (owed for ${stoppedFor} ms: the origin's video, or our layer, paused)` : '';
    const withheld = withheldFor >= limit / 2 ? `; no video for ${withheldFor} ms while the node passed on the origin's batches listing video${layer === undefined ? '' : ` of our layer (tag ${layer})`}` : '';
    this.safeEmit('stalled', `nothing decoded for ${now - this.#progressAt} ms${resumed}; last video packet ${now - this.#arrivedAt} ms ago${withheld}; ${requests} key frame requests since, ${this.#keyFramesAsked} asked of the node`);
  }
}

/**
 * A broadcaster whose uplink dips makes its browser stop sending its top simulcast layers, for a
 * moment or for good: viewers on such a layer get nothing until mediasoup, at their node, finds
 * the layer inactive (no packet for 1.5 s: RtpStreamRecv's inactivity check) and moves them to
 * another, which starts with a key frame. Not the node's fault. Traced in the deployed e2e test: a
 * broadcaster page's bandwidth estimate dipping while viewer pages loaded stopped its 720p layer
 * for 0.1 to 8 s, and viewers of the origin and of honest relays left them.
 */
const LAYER_INACTIVE_MS = 1500;

/**
 * From when (local ms) our layer owes us a picture, as the origin's tagged batches tell: from
 * when it came back after a pause, or, while the origin does not get it, from when mediasoup
 * moves us off it (see LAYER_INACTIVE_MS). -Infinity: nothing to excuse (or untagged batches).
 */
function layerOwedFrom(v: IntegrityVerifier | undefined, layer: number | undefined, now: number): number {
  const l = v && layer !== undefined ? v.layerVideo(layer) : undefined;
  if (!l) return Number.NEGATIVE_INFINITY;
  return now - l.at >= ORIGIN_VIDEO_GAP_MS ? l.at + LAYER_INACTIVE_MS : l.since;
}

/** Video frames the browser decoded, packets it received and key frames it asked for, on these consumers so far. */
async function videoStats(video: msc.Consumer[]): Promise<{ decoded: number; packets: number; keyFrameRequests: number }> {
  let decoded = 0;
  let packets = 0;
  let keyFrameRequests = 0;
  for (const c of video) {
    try {
      for (const s of (await c.getStats()).values() as Iterable<{ type: string; framesDecoded?: number; packetsReceived?: number; pliCount?: number; firCount?: number }>) {
        if (s.type !== 'inbound-rtp') continue;
        decoded += s.framesDecoded ?? 0;
        packets += s.packetsReceived ?? 0;
        keyFrameRequests += (s.pliCount ?? 0) + (s.firCount ?? 0);
      }
    } catch {
      // closed meanwhile
    }
  }
  return { decoded, packets, keyFrameRequests };
}
