import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { types as msc } from 'mediasoup-client';
import { DIGEST_BYTES, FRAME_TAG_VIDEO, encodeBatchBody, signedBatch, type IntegrityAnchor } from '@cascade/protocol';
import { IntegrityMonitor } from '../src/integrity/IntegrityMonitor.js';

/**
 * The monitor's stall check as a page runs it (a `document` exists: it reads the browser's
 * inbound-rtp stats), with fake time and a fake video consumer whose counters the test moves.
 * No digests here (no anchor): only whether the picture moves.
 */
let fakeIds = 0;
class FakeVideo {
  readonly id = `consumer-${++fakeIds}`;
  decoded = 0;
  packets = 0;
  readonly kind = 'video';
  closed = false;
  readonly rtpParameters = { codecs: [{ mimeType: 'video/VP8' }] };
  /** A browser receiver with encoded streams: its frames reach the monitor through the (fake) worker. */
  rtpReceiver: unknown;
  async getStats(): Promise<Map<string, unknown>> {
    return new Map([['in', { type: 'inbound-rtp', framesDecoded: this.decoded, packetsReceived: this.packets }]]);
  }
}

let monitor: IntegrityMonitor;
let stalledAt: number | undefined;
/** When the monitor asked for a key frame over signalling (keyframewanted). */
let askedAt: number[] = [];
let lastDetail = '';
let video: FakeVideo;

/** A monitor on the fake video consumer, its stalls and key frame requests recorded (a digest anchor or none). */
function watching(anchor: IntegrityAnchor | undefined): IntegrityMonitor {
  const now = Date.now();
  const m = new IntegrityMonitor({ streamId: 'k3v9d2xq7m', anchor, anchorAt: now, anchorRttMs: 10 });
  m.on('stalled', (detail) => {
    stalledAt ??= Date.now();
    lastDetail = detail;
  });
  m.on('keyframewanted', () => askedAt.push(Date.now()));
  m.attach(video as unknown as msc.Consumer);
  return m;
}

/** `ms` of playback in 50 ms steps: `decode` and `receive` say whether frames decode and packets come in each step. */
async function play(ms: number, o: { decode: boolean; receive: boolean }): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    if (o.decode) video.decoded++;
    if (o.receive) video.packets += 3;
    await vi.advanceTimersByTimeAsync(50);
  }
}

describe('IntegrityMonitor stall check (browser)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal('document', {});
    stalledAt = undefined;
    askedAt = [];
    video = new FakeVideo();
    monitor = watching(undefined);
    monitor.setLive(true);
    monitor.setMediaConnected(true);
  });

  afterEach(() => {
    monitor.close();
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it('nothing arrives any more (a node that stopped sending): stalled about stallAfterMs after the last frame', async () => {
    await play(2000, { decode: true, receive: true });
    const stopped = Date.now();
    await play(3000, { decode: false, receive: false });
    expect(stalledAt).toBeDefined();
    expect(stalledAt! - stopped).toBeGreaterThanOrEqual(1200);
    expect(stalledAt! - stopped).toBeLessThan(1200 + 2 * 250);
    // The report says what was measured.
    expect(lastDetail).toMatch(/^nothing decoded for \d+ ms; last video packet \d+ ms ago; 0 key frame requests since, 0 asked of the node$/);
  });

  it('a starved page (its checks late by seconds) calls no stall for the gap; a real one after it is still called', async () => {
    await play(2000, { decode: true, receive: true });
    // The page got no CPU for 3 s: no timer ran, and the stats moved on by nothing.
    vi.setSystemTime(Date.now() + 3000);
    await play(300, { decode: false, receive: false });
    expect(stalledAt).toBeUndefined();
    const from = Date.now();
    await play(2000, { decode: false, receive: false });
    expect(stalledAt).toBeDefined();
    expect(stalledAt! - from).toBeGreaterThanOrEqual(900);
  });

  it('a media transport that is not connected (its handshake lost on a weak link) owes no picture: no stall, however long', async () => {
    monitor.setMediaConnected(false);
    await play(10_000, { decode: false, receive: false });
    expect(stalledAt).toBeUndefined();
    // Once it connects, the clock starts (the first frame's grace, then the usual limit).
    monitor.setMediaConnected(true);
    await play(8000, { decode: false, receive: false });
    expect(stalledAt).toBeDefined();
  });

  it('packets keep coming but nothing decodes (a key frame on its way over a lossy link): not a stall for the key-frame wait', async () => {
    await play(2000, { decode: true, receive: true });
    const stopped = Date.now();
    await play(3000, { decode: false, receive: true });
    expect(stalledAt).toBeUndefined();
    // The key frame came: the picture moves again, and nothing was reported.
    await play(2000, { decode: true, receive: true });
    expect(stalledAt).toBeUndefined();
    // It never comes: stalled after the longer wait.
    const again = Date.now();
    await play(5000, { decode: false, receive: true });
    expect(stalledAt).toBeDefined();
    expect(stalledAt! - again).toBeGreaterThanOrEqual(1200 + 2500);
    expect(stopped).toBeLessThan(again);
    expect(lastDetail).toMatch(/, 3 asked of the node$/);
  });

  it('packets keep coming but nothing decodes: a key frame is asked of the node every stallAfterMs (the decoder\'s own request may be lost), never while the picture moves or nothing arrives', async () => {
    await play(3000, { decode: true, receive: true });
    expect(askedAt).toEqual([]);
    const stopped = Date.now();
    await play(3000, { decode: false, receive: true });
    expect(askedAt.length).toBe(2);
    expect(askedAt[0]! - stopped).toBeGreaterThanOrEqual(1200);
    expect(askedAt[0]! - stopped).toBeLessThan(1200 + 2 * 250);
    expect(askedAt[1]! - askedAt[0]!).toBeGreaterThanOrEqual(1200);
    // The key frame came: nothing more is asked, and the count starts again.
    await play(3000, { decode: true, receive: true });
    expect(askedAt.length).toBe(2);
    // A node that sends nothing gets no key frame request (there is nothing to repair): it is left.
    await play(3000, { decode: false, receive: false });
    expect(askedAt.length).toBe(2);
    expect(stalledAt).toBeDefined();
  });
});

describe('IntegrityMonitor digest channel (Node)', () => {
  it('the batches a node hands over with the data consumer (the last second) count at once, before any comes on the channel; garbage among them is ignored', async () => {
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const publicKey = Buffer.from(await crypto.subtle.exportKey('spki', keys.publicKey)).toString('base64');
    const now = Date.now();
    const batch = async (seq: number) => {
      const body = encodeBatchBody({ streamId: 'k3v9d2xq7m', seq, originTime: now - 300 + seq * 100, intervalMs: 100, videoFrames: 3, audioFrames: 5, digests: [new Uint8Array(DIGEST_BYTES).fill(seq)] });
      const sig = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, body as BufferSource));
      return Buffer.from(signedBatch(body, sig)).toString('base64');
    };
    const m = new IntegrityMonitor({ streamId: 'k3v9d2xq7m', anchor: { algorithm: 'ECDSA-P256-SHA256', publicKey, originTime: now }, anchorAt: now, anchorRttMs: 10 });
    const recent = [await batch(1), 'not base64 !!', await batch(2), await batch(3)];
    const signal = { request: async () => ({ dataConsumer: { id: 'dc', dataProducerId: 'dp', sctpStreamParameters: { streamId: 1 }, label: 'l', protocol: 'p' }, recent }) };
    const channel = { on: () => {}, close: () => {} };
    const transport = { id: 't', consumeData: async () => channel };
    await m.subscribeDigests(signal as never, transport as never);
    expect(m.status).toMatchObject({ batches: 3, batchesRefused: 0, batchesMissed: 0 });
    m.close();
  });
});

describe('IntegrityMonitor stall check against the origin\'s video (browser)', () => {
  // Real crypto (signing, verifying) runs on Node's thread pool: only timers and Date are faked.
  let keys: CryptoKeyPair;
  let publicKey: string;
  let onMessage: ((m: unknown) => void) | undefined;
  let seq = 0;
  /** When the latest ping the node answered had left (the fake signalling's answeredPingSentAt). */
  let answeredPingAt: number | undefined;
  /** The page's frame worker (fake): the test hands the monitor received frames through it. */
  let worker: { onmessage: ((e: { data: unknown }) => void) | null } | undefined;
  let frameNo = 0;

  beforeEach(async () => {
    keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    publicKey = Buffer.from(await crypto.subtle.exportKey('spki', keys.publicKey)).toString('base64');
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'Date'] });
    vi.stubGlobal('document', {});
    // A browser with encoded streams (the frames themselves are not part of these tests).
    vi.stubGlobal('RTCRtpReceiver', class { createEncodedStreams() {} });
    vi.stubGlobal(
      'Worker',
      class {
        onmessage: ((e: { data: unknown }) => void) | null = null;
        constructor() {
          worker = this;
        }
        postMessage() {}
        terminate() {}
      },
    );
    stalledAt = undefined;
    askedAt = [];
    seq = 0;
    frameNo = 0;
    video = new FakeVideo();
    video.rtpReceiver = { createEncodedStreams: () => ({ readable: {}, writable: {} }) };
    const now = Date.now();
    monitor = watching({ algorithm: 'ECDSA-P256-SHA256', publicKey, originTime: now });
    const channel = { on: (_: string, cb: (m: unknown) => void) => (onMessage = cb), close: () => {} };
    answeredPingAt = undefined;
    const signal = {
      request: async (type: string) => (type === 'integrity.subscribe' ? { dataConsumer: { id: 'dc', dataProducerId: 'dp', sctpStreamParameters: { streamId: 1 }, label: 'l', protocol: 'p' } } : { recent: [] }),
      get answeredPingSentAt() {
        return answeredPingAt;
      },
    };
    await monitor.subscribeDigests(signal as never, { id: 't', consumeData: async () => channel } as never);
    monitor.setLive(true);
    monitor.setMediaConnected(true);
  });

  afterEach(() => {
    monitor.close();
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  /** One batch from the origin, now, saying whether it got video frames (tagged: these frames, each of its layer); waits until the monitor has checked it. */
  async function batch(videoFrames: number, tagged?: { digests: Uint8Array[]; layers: number[] }): Promise<void> {
    const s = ++seq;
    const body = encodeBatchBody({
      streamId: 'k3v9d2xq7m',
      seq: s,
      originTime: Date.now(),
      intervalMs: 100,
      videoFrames: tagged ? tagged.digests.length : videoFrames,
      audioFrames: tagged ? 0 : 5,
      digests: tagged?.digests ?? [],
      ...(tagged ? { layers: Uint8Array.from(tagged.layers, (l) => FRAME_TAG_VIDEO + l) } : {}),
    });
    const sig = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, body as BufferSource));
    onMessage!(signedBatch(body, sig));
    while (monitor.status.batches < s) await new Promise((r) => setImmediate(r));
  }

  /** `ms` of the stream in 100 ms steps, a batch each: whether the origin gets video, whether this viewer decodes and receives. */
  async function stream(ms: number, o: { originVideo: boolean; decode: boolean; receive: boolean; nodeAnswers?: boolean }): Promise<void> {
    for (let t = 0; t < ms; t += 100) {
      if (o.decode) video.decoded += 3;
      if (o.receive) video.packets += 6;
      // The keep-alive's pings, each answered by the node (unless its signalling is held up).
      if (o.nodeAnswers ?? true) answeredPingAt = Date.now();
      await batch(o.originVideo ? 3 : 0);
      await vi.advanceTimersByTimeAsync(100);
    }
  }

  /**
   * `ms` of a simulcast stream, a frame per layer the origin gets (`origin`) and a tagged batch
   * of them every 100 ms; the viewer receives and decodes the frames of layer `sent` (none: no
   * video reaches it), through the browser's encoded streams.
   */
  async function layered(ms: number, o: { origin: number[]; sent?: number }): Promise<void> {
    for (let t = 0; t < ms; t += 100) {
      const frames = o.origin.map((l) => ({ l, data: Uint8Array.of(0x10, 0, l, ++frameNo & 0xff, frameNo >> 8, 7) }));
      const digests = await Promise.all(frames.map(async (f) => new Uint8Array(await crypto.subtle.digest('SHA-256', f.data)).subarray(0, DIGEST_BYTES)));
      const mine = frames.find((f) => f.l === o.sent);
      const verified = monitor.status.framesVerified;
      if (mine) {
        video.decoded += 3;
        video.packets += 6;
        worker!.onmessage!({ data: { tid: 1, id: frameNo, data: mine.data.slice().buffer } });
      }
      answeredPingAt = Date.now();
      await batch(0, { digests, layers: frames.map((f) => f.l) });
      while (mine && monitor.status.framesVerified === verified) await new Promise((r) => setImmediate(r));
      await vi.advanceTimersByTimeAsync(100);
    }
  }

  it('the broadcaster stops sending our simulcast layer (its uplink dipped): no stall while mediasoup takes 1.5 s to move us to a layer it still sends', async () => {
    await layered(3000, { origin: [0, 1, 2], sent: 2 });
    // Layer 2 is gone at the origin: the node sends us nothing until its mediasoup finds the layer inactive.
    await layered(1800, { origin: [0, 1] });
    await layered(2000, { origin: [0, 1], sent: 1 });
    expect(stalledAt, lastDetail).toBeUndefined();
    expect(monitor.status.framesVerified).toBeGreaterThan(40);
  });

  it('the broadcaster stops our layer and the node never moves us to another: stalled stallAfterMs after mediasoup would have', async () => {
    await layered(3000, { origin: [0, 1, 2], sent: 2 });
    const gone = Date.now();
    await layered(4000, { origin: [0, 1] });
    expectOrdinaryStall(gone + 1500);
    expect(stalledAt! - gone).toBeLessThan(1500 + 1200 + 2 * 250 + 100);
  });

  it('says when the highest layer the origin gets changes (for the viewer to ask for no more)', async () => {
    const tops: (number | undefined)[] = [];
    monitor.on('originlayers', (top) => tops.push(top));
    await layered(1000, { origin: [0, 1, 2], sent: 2 });
    await layered(1000, { origin: [0, 1] });
    await layered(1000, { origin: [0, 1, 2], sent: 2 });
    expect(tops).toEqual([2, 1, 2]);
  });

  it('a node that withholds our layer while the origin lists it (a black hole, tagged batches): stalled about half stallAfterMs after its last packet, saying which layer', async () => {
    await layered(3000, { origin: [0, 1, 2], sent: 2 });
    const stopped = Date.now();
    await layered(2000, { origin: [0, 1, 2] });
    expectWithheldStall(stopped);
    expect(lastDetail).toContain(`of our layer (tag ${FRAME_TAG_VIDEO + 2})`);
  });

  it('a broadcaster that pauses for 1.5 s (no video at the origin) stops every picture: no stall is called, then or just after it comes back', async () => {
    await stream(3000, { originVideo: true, decode: true, receive: true });
    await stream(1500, { originVideo: false, decode: false, receive: false });
    // The origin has video again; this viewer's picture comes a moment later.
    await stream(300, { originVideo: true, decode: false, receive: false });
    await stream(2000, { originVideo: true, decode: true, receive: true });
    expect(stalledAt, lastDetail + ' ' + JSON.stringify(monitor.status)).toBeUndefined();
  });

  /** A stall called by the ordinary limit: stallAfterMs or more after `since`, not for withheld video. */
  function expectOrdinaryStall(since: number): void {
    expect(stalledAt).toBeDefined();
    expect(stalledAt! - since).toBeGreaterThanOrEqual(1200);
    expect(lastDetail).not.toContain('while the node passed on');
  }

  /** A stall called for withheld video: half stallAfterMs after `since`, give or take two checks, saying why. */
  function expectWithheldStall(since: number): void {
    expect(stalledAt).toBeDefined();
    expect(stalledAt! - since).toBeGreaterThanOrEqual(600);
    expect(stalledAt! - since).toBeLessThan(600 + 2 * 250 + 100);
    expect(lastDetail).toContain('while the node passed on the origin\'s batches listing video');
  }

  it('the origin\'s video comes back after a pause and this viewer gets none: its consumer owes nothing before its first key frame (mediasoup picks a layer again), a stall at stallAfterMs, not half of it', async () => {
    await stream(3000, { originVideo: true, decode: true, receive: true });
    await stream(1500, { originVideo: false, decode: false, receive: false });
    const back = Date.now();
    await stream(3000, { originVideo: true, decode: false, receive: false });
    expectOrdinaryStall(back);
    expect(lastDetail).toMatch(/^nothing decoded for \d+ ms \(owed for \d+ ms: the origin's video, or our layer, paused\); last video packet \d+ ms ago; \d+ key frame requests since/);
  });

  it('a node whose signalling is held up (no ping answered since our last video packet) may still have a consumer.closed on its way: judged by stallAfterMs, not half of it', async () => {
    await stream(3000, { originVideo: true, decode: true, receive: true });
    const stopped = Date.now();
    await stream(2000, { originVideo: true, decode: false, receive: false, nodeAnswers: false });
    expectOrdinaryStall(stopped);
  });

  it('a node that passes on the batches and withholds the video (a black hole): stalled about half stallAfterMs after its last packet, also once a consumer delivers again after a broadcaster\'s pause', async () => {
    await stream(3000, { originVideo: true, decode: true, receive: true });
    await stream(1500, { originVideo: false, decode: false, receive: false });
    await stream(1000, { originVideo: true, decode: true, receive: true });
    const stopped = Date.now();
    await stream(2000, { originVideo: true, decode: false, receive: false });
    expectWithheldStall(stopped);
  });

  it('a node whose parent failed (batches and video stop together) and that re-parents: the video may come 500 ms after the new parent\'s batches, no stall', async () => {
    await stream(3000, { originVideo: true, decode: true, receive: true });
    // No batch comes meanwhile: the node has no parent.
    await vi.advanceTimersByTimeAsync(700);
    // The new parent's batches come; its first key frame 500 ms later.
    await stream(500, { originVideo: true, decode: false, receive: false });
    await stream(2000, { originVideo: true, decode: true, receive: true });
    expect(stalledAt, lastDetail).toBeUndefined();
  });

  /** The node replaced our video consumer (a new source): the old one closed, a new one attached that has received nothing. */
  function replaceVideo(): void {
    video.closed = true;
    video = new FakeVideo();
    monitor.attach(video as unknown as msc.Consumer);
  }

  it('a node that replaces our video consumer (its new parent\'s source) while the batches run on: the new one owes nothing before its first key frame, 1 s later, no stall', async () => {
    await stream(3000, { originVideo: true, decode: true, receive: true });
    replaceVideo();
    await stream(1000, { originVideo: true, decode: false, receive: false });
    await stream(2000, { originVideo: true, decode: true, receive: true });
    expect(stalledAt, lastDetail).toBeUndefined();
  });

  it('a replaced consumer that never delivers is judged by the ordinary limit (stallAfterMs), not the withheld one', async () => {
    await stream(3000, { originVideo: true, decode: true, receive: true });
    replaceVideo();
    const replaced = Date.now();
    await stream(2500, { originVideo: true, decode: false, receive: false });
    expectOrdinaryStall(replaced);
  });

  it('packets keep coming but nothing decodes while the batches come: the longer wait for a key frame still holds', async () => {
    await stream(3000, { originVideo: true, decode: true, receive: true });
    await stream(2500, { originVideo: true, decode: false, receive: true });
    expect(stalledAt, lastDetail).toBeUndefined();
  });
});
