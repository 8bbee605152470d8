import { beforeAll, describe, expect, it } from 'vitest';
import { DIGEST_BYTES, FRAME_TAG_VIDEO, encodeBatchBody, signedBatch } from '@cascade/protocol';
import { IntegrityVerifier, type IntegrityStatus } from '../src/integrity/IntegrityVerifier.js';

/**
 * The verifier with a fake clock (the origin's and ours agree here) and a real P-256 key: batches
 * every 100 ms, each with its period's digests and the previous period's, as the origin sends.
 */
const STREAM = 'k3v9d2xq7m';
const T0 = 1_796_400_000_000;
let keys: CryptoKeyPair;
let publicKey: string;

beforeAll(async () => {
  keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  publicKey = Buffer.from(await crypto.subtle.exportKey('spki', keys.publicKey)).toString('base64');
});

const digest = (n: number) => new Uint8Array(DIGEST_BYTES).fill(n % 256).map((x, i) => (i === 0 ? n >> 8 : x));

class Harness {
  now = T0;
  readonly v: IntegrityVerifier;
  readonly decisions = new Map<number, boolean>();
  readonly states: IntegrityStatus[] = [];
  /** Digests of the frames the origin had, per batch period (seq → digests). */
  readonly periods = new Map<number, Uint8Array[]>();
  seq = 0;

  constructor(o: { rttMs?: number } = {}) {
    this.v = new IntegrityVerifier({ streamId: STREAM, anchor: { algorithm: 'ECDSA-P256-SHA256', publicKey, originTime: T0 }, anchorAt: T0, anchorRttMs: o.rttMs ?? 20, now: () => this.now });
    this.v.on('decision', (id, ok) => this.decisions.set(id, ok));
    this.v.on('status', (s) => this.states.push(s));
  }

  /** The origin had these frames during the current period. */
  originHad(...ns: number[]): void {
    const p = this.periods.get(this.seq + 1) ?? [];
    p.push(...ns.map(digest));
    this.periods.set(this.seq + 1, p);
  }

  /** The origin's next batch (this period's digests and the previous one's), signed. */
  async batch(o: { tamperSignature?: boolean; originTime?: number; streamId?: string } = {}): Promise<Uint8Array> {
    this.seq++;
    const digests = [...(this.periods.get(this.seq) ?? []), ...(this.periods.get(this.seq - 1) ?? [])];
    const body = encodeBatchBody({ streamId: o.streamId ?? STREAM, seq: this.seq, originTime: o.originTime ?? this.now, intervalMs: 100, videoFrames: 1, audioFrames: 0, digests });
    const sig = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, body as BufferSource));
    if (o.tamperSignature) sig[3]! ^= 1;
    return signedBatch(body, sig);
  }

  /** Time passes in 100 ms steps, ticking, with (or without) the batches arriving. */
  async run(ms: number, o: { frames?: (step: number) => number[]; deliver?: (seq: number) => boolean; reorder?: (seq: number, b: Uint8Array) => Uint8Array[]; batch?: () => Promise<Uint8Array> } = {}): Promise<void> {
    for (let step = 0; step < ms / 100; step++) {
      for (const n of o.frames?.(step) ?? []) this.v.submit(n, digest(n), 'video');
      this.now += 100;
      const b = await (o.batch ?? (() => this.batch()))();
      if (o.deliver?.(this.seq) ?? true) for (const x of o.reorder?.(this.seq, b) ?? [b]) await this.v.addBatch(x);
      this.v.tick();
    }
  }
}

let frameNo = 1000;
/** Frames the origin had and that reach the viewer (`n` per step). */
const honest = (h: Harness, n = 2) => () => {
  const ids = Array.from({ length: n }, () => frameNo++);
  h.originHad(...ids);
  return ids;
};

describe('IntegrityVerifier', () => {
  it('frames verify as their digests come (before or after the frame), and the state says so', async () => {
    const h = new Harness();
    await h.run(2000, { frames: honest(h) });
    expect([...h.decisions.values()].every(Boolean)).toBe(true);
    expect(h.decisions.size).toBe(40);
    expect(h.v.status).toMatchObject({ state: 'verified', framesVerified: 40, framesRejected: 0, framesExpired: 0 });
  });

  it('a frame the origin never had is refused once the batches of its time came: tampered', async () => {
    const h = new Harness();
    await h.run(2000, { frames: honest(h) });
    await h.run(1000, { frames: (step) => (step === 0 ? [1] : honest(h)()) });
    expect(h.decisions.get(1)).toBe(false);
    expect(h.states.at(-1)).toMatchObject({ state: 'tampered', code: 'CASCADE_ERR_INTEGRITY_FRAME_MISMATCH' });
  });

  it('loss, reordering and a lost batch (its digests come again in the next one) raise nothing', async () => {
    const h = new Harness();
    let held: Uint8Array | undefined;
    await h.run(3000, {
      frames: honest(h),
      // Every 7th batch is lost; every 5th arrives after the next one.
      deliver: (seq) => seq % 7 !== 0,
      reorder: (seq, b) => {
        if (seq % 5 === 0) {
          held = b;
          return [];
        }
        const out = held ? [b, held] : [b];
        held = undefined;
        return out;
      },
    });
    expect(h.v.status).toMatchObject({ state: 'verified', framesRejected: 0, framesExpired: 0 });
  });

  it('two batches in a row lost: the frames of that time are dropped unchecked, not called altered', async () => {
    const h = new Harness();
    await h.run(2000, { frames: honest(h) });
    await h.run(2000, { frames: honest(h), deliver: (seq) => seq !== 25 && seq !== 26 });
    const s = h.v.status;
    expect(s.framesRejected).toBe(0);
    expect(s.framesExpired).toBeGreaterThan(0);
    expect(s.state).toBe('verified');
    // What the channel's loss looked like: two batches never came, and 300 ms passed between two that did.
    expect(s).toMatchObject({ batchesMissed: 2, batchGapMaxMs: 300 });
  });

  it('a late batch vouching for old frames does not put off the alarm for the newer frames nobody vouches for', async () => {
    const h = new Harness();
    await h.run(2000, { frames: honest(h) });
    const from = h.now;
    let late: Uint8Array | undefined;
    let alarmAt: number | undefined;
    h.v.on('status', (st) => {
      if (st.state === 'unverified') alarmAt ??= h.now;
    });
    // The digests stop; the first withheld batch comes 600 ms late (a relay trickling old ones to look alive).
    for (let step = 0; step < 20; step++) {
      for (const n of honest(h)()) h.v.submit(n, digest(n), 'video');
      h.now += 100;
      const b = await h.batch();
      if (step === 0) late = b;
      if (step === 6) await h.v.addBatch(late!);
      h.v.tick();
    }
    expect(alarmAt).toBeDefined();
    expect(alarmAt! - from).toBeLessThanOrEqual(1000);
  });

  it('the digest channel dropped: unverified within a second, DIGESTS_MISSING', async () => {
    const h = new Harness();
    await h.run(2000, { frames: honest(h) });
    const at = h.now;
    await h.run(1500, { frames: honest(h), deliver: () => false });
    const alarm = h.states.find((s) => s.state === 'unverified')!;
    expect(alarm.code).toBe('CASCADE_ERR_INTEGRITY_DIGESTS_MISSING');
    expect(h.states.at(-1)!.state).toBe('unverified');
    expect(h.now - at).toBeLessThanOrEqual(1500);
  });

  it('unverifiedForMs: how long frames have waited with none verified (what the monitor asks the node for recent batches on), back to 0 once batches vouch again', async () => {
    const h = new Harness();
    await h.run(1000, { frames: honest(h) });
    expect(h.v.unverifiedForMs).toBe(0);
    // The channel stalls: frames keep coming, their batches do not.
    const missed: Uint8Array[] = [];
    const stuck = async () => {
      const b = await h.batch();
      missed.push(b);
      return b;
    };
    await h.run(400, { frames: honest(h), deliver: () => false, batch: stuck });
    expect(h.v.unverifiedForMs).toBeGreaterThanOrEqual(300);
    expect(h.v.unverifiedForMs).toBeLessThanOrEqual(400);
    expect(h.states.at(-1)!.state).toBe('verified');
    // The missed batches handed over (what integrity.recent gives): everything waiting verifies, no alarm.
    for (const b of missed) await h.v.addBatch(b, 'handover');
    h.v.tick();
    expect(h.v.unverifiedForMs).toBe(0);
    await h.run(500, { frames: honest(h) });
    expect(h.states.some((x) => x.state === 'unverified')).toBe(false);
  });

  it('a node that stops altogether (frozen: frames and batches both stop) is not called unverified for its last frames; one that sends frames without digests is', async () => {
    const frozen = new Harness();
    await frozen.run(1000, { frames: honest(frozen) });
    // Three frames arrive, then nothing more: their batches never come.
    await frozen.run(100, { frames: honest(frozen, 3), deliver: () => false });
    await frozen.run(2000, { deliver: () => false });
    expect(frozen.states.some((x) => x.state === 'unverified')).toBe(false);

    const withholding = new Harness();
    await withholding.run(1000, { frames: honest(withholding) });
    await withholding.run(1200, { frames: honest(withholding), deliver: () => false });
    expect(withholding.states.at(-1)).toMatchObject({ state: 'unverified', code: 'CASCADE_ERR_INTEGRITY_DIGESTS_MISSING' });
  });

  it('batches with a bad signature, of another stream, or old (replayed): refused with their code', async () => {
    for (const [o, code] of [
      [{ tamperSignature: true }, 'CASCADE_ERR_INTEGRITY_BAD_SIGNATURE'],
      [{ streamId: 'anotherone' }, 'CASCADE_ERR_INTEGRITY_MALFORMED'],
      [{ originTime: 0 }, 'CASCADE_ERR_INTEGRITY_STALE'],
    ] as const) {
      const h = new Harness();
      await h.run(2000, { frames: honest(h) });
      await h.run(1500, { frames: honest(h), batch: () => h.batch(o as { originTime?: number }) });
      expect(h.states.find((s) => s.state === 'unverified'), code).toMatchObject({ code });
      expect(h.v.status.batchesRefused).toBeGreaterThan(0);
    }
  });

  it('only replayed batches come, with a trickle of video and repeated audio that verifies: unverified within a second', async () => {
    // What a relay replaying 10 s old media and digests looked like to its werift viewer: a video
    // frame now and then (never three waiting at once), audio silence matching recent digests.
    const h = new Harness();
    h.originHad(7);
    await h.run(1000, { frames: honest(h) });
    const switched = h.now;
    let step = 0;
    const old = T0 - 10_000;
    await h.run(1000, {
      batch: () => h.batch({ originTime: old + step * 100 }),
      frames: () => {
        h.v.submit(frameNo++, digest(7), 'audio');
        return step++ % 5 === 0 ? [frameNo++] : [];
      },
    });
    const alarm = h.states.find((s) => s.state === 'unverified');
    expect(alarm).toMatchObject({ code: 'CASCADE_ERR_INTEGRITY_STALE' });
    expect(h.now - switched).toBeLessThanOrEqual(1000);
  });

  it('the first batch may come a while after the first frames (the digest channel opens after the media): no alarm', async () => {
    const h = new Harness();
    await h.run(1500, { frames: honest(h), deliver: () => false });
    await h.run(1500, { frames: honest(h) });
    expect(h.states.map((s) => s.state)).toEqual(['verified']);
    expect(h.v.status.framesRejected).toBe(0);
  });

  it('batches handed over with the channel (the last second), then the channel itself 3.6 s after the first frame (an SCTP handshake packet lost on a weak link costs a 3 s retransmission): no alarm', async () => {
    const h = new Harness();
    // The node's last second, handed over; the first frames (its last 300 ms) verify with it.
    const handed: Uint8Array[] = [];
    const first = honest(h);
    await h.run(1000, { frames: (step) => (step >= 7 ? first() : []), batch: async () => (handed.push(await h.batch()), new Uint8Array(0)), deliver: () => false });
    for (const b of handed) await h.v.addBatch(b, 'handover');
    expect(h.v.status.framesVerified).toBe(6);
    // The channel delivers its first batch 3.6 s after the first frame; the frames of that time were dropped unchecked.
    await h.run(3300, { frames: honest(h), deliver: () => false });
    await h.run(1500, { frames: honest(h) });
    expect(h.states.map((s) => s.state), JSON.stringify(h.states.at(-1))).toEqual(['verified']);
    expect(h.v.status.framesRejected).toBe(0);
  });

  it('handed-over batches, then a channel that never delivers: unverified once the first-batch grace is over', async () => {
    const h = new Harness();
    const handed: Uint8Array[] = [];
    await h.run(1000, { frames: honest(h), batch: async () => (handed.push(await h.batch()), new Uint8Array(0)), deliver: () => false });
    for (const b of handed) await h.v.addBatch(b, 'handover');
    await h.run(6000, { frames: honest(h), deliver: () => false });
    expect(h.v.status).toMatchObject({ state: 'unverified', code: 'CASCADE_ERR_INTEGRITY_DIGESTS_MISSING' });
  });

  it('video that stops verifying is noticed even while repeated audio (silence) still matches old digests', async () => {
    const h = new Harness();
    h.originHad(7);
    await h.run(1000, { frames: honest(h) });
    await h.run(1500, {
      deliver: () => false,
      frames: () => {
        h.v.submit(frameNo++, digest(7), 'audio');
        return honest(h)();
      },
    });
    expect(h.states.at(-1)).toMatchObject({ state: 'unverified' });
  });

  it('a starved tick (the page was busy) judges nothing', async () => {
    const h = new Harness();
    await h.run(1000, { frames: honest(h) });
    for (let i = 0; i < 10; i++) h.v.submit(frameNo++, digest(frameNo), 'video');
    h.now += 2000;
    h.v.tick();
    expect(h.v.status.state).toBe('verified');
  });

  it('tagged batches: the layer we were last sent, the highest the origin gets (a layer unlisted for 400 ms is gone), each layer\'s run', async () => {
    const h = new Harness();
    let origin = [0, 1, 2];
    /** 100 ms: a frame per layer the origin gets, in a tagged batch; we get the frame of layer `sent`. */
    const step = async (sent?: number) => {
      const ids = origin.map(() => frameNo++);
      h.now += 100;
      h.seq++;
      const body = encodeBatchBody({ streamId: STREAM, seq: h.seq, originTime: h.now, intervalMs: 100, videoFrames: ids.length, audioFrames: 0, digests: ids.map(digest), layers: Uint8Array.from(origin, (l) => FRAME_TAG_VIDEO + l) });
      await h.v.addBatch(signedBatch(body, new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, body as BufferSource))));
      const i = sent === undefined ? -1 : origin.indexOf(sent);
      if (i >= 0) h.v.submit(ids[i]!, digest(ids[i]!), 'video');
      h.v.tick();
    };
    for (let i = 0; i < 10; i++) await step(2);
    expect([h.v.videoLayer, h.v.originTopLayer(h.now)]).toEqual([FRAME_TAG_VIDEO + 2, 2]);
    const lastTop = h.now;
    origin = [0, 1];
    for (let i = 0; i < 3; i++) await step();
    expect(h.v.originTopLayer(h.now)).toBe(2);
    for (let i = 0; i < 2; i++) await step();
    expect(h.v.originTopLayer(h.now)).toBe(1);
    expect(h.v.layerVideo(FRAME_TAG_VIDEO + 2)?.at).toBe(lastTop);
    expect(h.v.videoBatchesFlowingSince(h.now, FRAME_TAG_VIDEO + 2)).toBeUndefined();
    expect(h.v.videoBatchesFlowingSince(h.now, FRAME_TAG_VIDEO + 1)).toBe(T0 + 100);
    // Moved to layer 1; the top layer comes back after its pause, its run anew.
    for (let i = 0; i < 3; i++) await step(1);
    expect(h.v.videoLayer).toBe(FRAME_TAG_VIDEO + 1);
    origin = [0, 1, 2];
    await step(1);
    expect(h.v.originTopLayer(h.now)).toBe(2);
    expect(h.v.layerVideo(FRAME_TAG_VIDEO + 2)).toEqual({ at: h.now, since: h.now });
  });

  it('untagged batches say nothing of layers', async () => {
    const h = new Harness();
    await h.run(1000, { frames: honest(h) });
    expect([h.v.videoLayer, h.v.originTopLayer(h.now), h.v.layerVideo(FRAME_TAG_VIDEO)]).toEqual([undefined, undefined, undefined]);
  });
});
