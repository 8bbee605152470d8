import type { types } from 'mediasoup';
import {
  NodeRequests,
  Notifications,
  Peer,
  decodeBatch,
  digestKey,
  type AssembledFrame,
  type IntegrityVerdict,
  type Logger,
  type PipeProducerInfo,
} from '@cascade/protocol';
import type { ControlPlane } from '../ControlPlane.js';
import type { MediaNode } from '../MediaNode.js';
import { pipeTransportOptions } from '../pipeTransport.js';
import { MEDIA_CODECS } from '../mediaCodecs.js';
import { tapFrames } from './frameTap.js';
import { frameDigest, type StreamDigester } from './StreamDigester.js';
import { verifySignature } from './StreamKey.js';

export interface ProbeOptions {
  /** How long the probe watches (ms); it ends sooner once frames that match nothing are plain. */
  durationMs: number;
  /** Frames (by when the origin had them) and batches (by their date) older than this come through a replay (ms). */
  maxAgeMs: number;
  /** Digests reaching the probe later than this after their (video) frames are withheld, when most are (ms). */
  maxDigestLagMs: number;
  requestTimeoutMs: number;
}

/** Frames matching no digest before the verdict is plain. */
const ENOUGH_REJECTED = 3;
/** A frame is judged a moment after it came (the origin's own tap may be a few ms behind the pipe's). */
const JUDGE_DELAY_MS = 250;

type ProbePeer = Peer<Record<string, never>, typeof NodeRequests, typeof Notifications>;

/**
 * The origin watches one of its streams through a relay, as a child relay would (a pipe opened
 * with a ticket the controller signed), and compares what comes with what it sent: every
 * complete frame must be one the origin had a moment ago (its StreamDigester remembers), and the
 * digest channel must bring the origin's own batches, correctly signed, in order, in time. The
 * relay cannot tell this pipe from a child relay's (unless it singles out the origin's address:
 * see the README on what is not protected).
 */
export async function probeRelay(
  node: MediaNode,
  control: ControlPlane,
  digester: StreamDigester,
  p: { streamId: string; relayId: string; ticket: string },
  options: ProbeOptions,
  deps: { logger: Logger; now?: () => number },
): Promise<IntegrityVerdict> {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'IntegrityProbe', streamId: p.streamId, relayId: p.relayId });
  const router = await node.pool.leastLoaded().createRouter({ mediaCodecs: MEDIA_CODECS });
  let peer: ProbePeer | undefined;
  const tally = new Tally(digester, p.streamId, options, now);
  try {
    const listen = node.pipeListenIp;
    const pipe = await router.createPipeTransport(pipeTransportOptions(listen));
    const direct = await router.createDirectTransport({ maxMessageSize: 256 * 1024 });
    peer = new Peer({ channel: control.openTunnel(p.relayId, { remoteAddress: '' }), inbound: {}, outbound: NodeRequests, notifications: Notifications, ignoreUnknownNotifications: true, requestTimeoutMs: options.requestTimeoutMs });
    const res = await peer.request('pipe.open', {
      ticket: p.ticket,
      streamId: p.streamId,
      ip: listen.announcedIp,
      port: pipe.tuple.localPort,
      srtpParameters: pipe.srtpParameters as { cryptoSuite: string; keyBase64: string },
    });
    await pipe.connect({ ip: res.ip, port: res.port, srtpParameters: res.srtpParameters as types.SrtpParameters });
    const watch = async (info: PipeProducerInfo) => {
      const producer = await pipe.produce({ kind: info.kind, rtpParameters: info.rtpParameters as types.RtpParameters, paused: info.paused });
      await tapFrames(direct, router, producer, (f) => tally.frame(f), now);
    };
    for (const info of res.producers.slice(0, 8)) await watch(info);
    peer.on('notification', (type, data) => {
      if (type === 'pipe.producer.new') void watch(data as PipeProducerInfo).catch(() => {});
    });
    if (res.integrity) {
      const d = res.integrity;
      const dp = await pipe.produceData({ sctpStreamParameters: d.sctpStreamParameters as types.SctpStreamParameters, label: d.label, protocol: d.protocol });
      const dc = await direct.consumeData({ dataProducerId: dp.id });
      dc.on('message', (m: Buffer) => tally.batch(m));
    }
    const end = now() + options.durationMs;
    while (now() < end && tally.rejected < ENOUGH_REJECTED) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, JUDGE_DELAY_MS));
    const verdict = tally.verdict(res.integrity !== undefined);
    log.info(verdict, 'probe done');
    return verdict;
  } finally {
    peer?.close(1000, 'probe done');
    router.close();
  }
}

/** What the probe saw, and what it makes of it. */
class Tally {
  frames = 0;
  rejected = 0;
  stale = 0;
  goodBatches = 0;
  badSignatures = 0;
  staleBatches = 0;
  /** Video frames that came through the relay, by digest: when, and when a good batch vouched for them. */
  readonly #arrived = new Map<string, { at: number; vouched?: number }>();
  #lastSeq = 0;
  readonly #digester: StreamDigester;
  readonly #streamId: string;
  readonly #options: ProbeOptions;
  readonly #now: () => number;

  constructor(digester: StreamDigester, streamId: string, options: ProbeOptions, now: () => number) {
    this.#digester = digester;
    this.#streamId = streamId;
    this.#options = options;
    this.#now = now;
  }

  frame(f: AssembledFrame): void {
    const d = frameDigest(f.data);
    const at = this.#now();
    // Video only: audio frames repeat (silence), and an old batch may list one that just came.
    if (f.kind === 'video') this.#arrived.set(digestKey(d), { at });
    setTimeout(() => {
      const sent = this.#digester.sentAt(d);
      if (sent === undefined) this.rejected++;
      else if (at - sent > this.#options.maxAgeMs) {
        this.rejected++;
        this.stale++;
      } else this.frames++;
    }, JUDGE_DELAY_MS).unref();
  }

  batch(message: Uint8Array): void {
    const now = this.#now();
    let parsed;
    try {
      parsed = decodeBatch(message);
    } catch {
      this.badSignatures++;
      return;
    }
    const { batch, body, signature } = parsed;
    if (batch.streamId !== this.#streamId || !verifySignature(this.#digester.publicKey, body, signature)) {
      this.badSignatures++;
      return;
    }
    if (batch.seq <= this.#lastSeq || now - batch.originTime > this.#options.maxDigestLagMs * 2) {
      this.staleBatches++;
      return;
    }
    this.#lastSeq = batch.seq;
    this.goodBatches++;
    for (const d of batch.digests) {
      const a = this.#arrived.get(digestKey(d));
      if (a && a.vouched === undefined) a.vouched = now;
    }
  }

  verdict(channel: boolean): IntegrityVerdict {
    const base = { frames: this.frames + this.rejected, rejected: this.rejected };
    const tampered = (code: string, detail: string): IntegrityVerdict => ({ verdict: 'tampered', code, detail, ...base });
    if (this.rejected >= 2) {
      return this.stale * 2 >= this.rejected
        ? tampered('CASCADE_ERR_INTEGRITY_STALE', `${this.stale} of ${base.frames} frames are the origin's from more than ${this.#options.maxAgeMs} ms ago (replayed)`)
        : tampered('CASCADE_ERR_INTEGRITY_FRAME_MISMATCH', `${this.rejected} of ${base.frames} frames match no frame the origin sent`);
    }
    if (base.frames === 0) return { verdict: 'inconclusive', detail: 'no complete frame came through the relay', ...base };
    if (!channel) return tampered('CASCADE_ERR_INTEGRITY_DIGESTS_MISSING', 'the relay offers no digest channel');
    if (this.goodBatches === 0) {
      if (this.badSignatures > 0) return tampered('CASCADE_ERR_INTEGRITY_BAD_SIGNATURE', `${this.badSignatures} batches with a bad signature, none good`);
      if (this.staleBatches > 0) return tampered('CASCADE_ERR_INTEGRITY_STALE', `${this.staleBatches} batches replayed or too old, none fresh`);
      return tampered('CASCADE_ERR_INTEGRITY_DIGESTS_MISSING', `no digest batch came through the relay with ${base.frames} frames`);
    }
    // Video frames that came long enough ago: were their digests there in time?
    const cutoff = this.#now() - this.#options.maxDigestLagMs;
    let due = 0;
    let late = 0;
    for (const a of this.#arrived.values()) {
      if (a.at > cutoff) continue;
      due++;
      if (a.vouched === undefined || a.vouched - a.at > this.#options.maxDigestLagMs) late++;
    }
    if (due >= 5 && late * 2 > due) return tampered('CASCADE_ERR_INTEGRITY_DIGESTS_MISSING', `${late} of ${due} video frames had no digest within ${this.#options.maxDigestLagMs} ms (withheld or delayed)`);
    return { verdict: 'clean', detail: `${base.frames} frames and ${this.goodBatches} batches verified (${due - late} of ${due} video frames vouched for in time)`, ...base };
  }
}
