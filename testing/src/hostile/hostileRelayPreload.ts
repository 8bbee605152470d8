/**
 * TEST ONLY. Turns a relay process into a hostile one, for the integrity tests: loaded into
 * `relay/dist/cli.js` with `NODE_OPTIONS=--import <this file>` by startHostileRelay(), never by
 * the product (it is not part of the relay package nor of any entry point). It patches two
 * things in the relay's own modules, below Cascade's logic, as a volunteer who modified their
 * copy could:
 *
 * - every source the relay makes of its parent's pipe goes through a loop in this process (a
 *   pipe consumer → UDP on loopback → a pipe producer that becomes the source), where the
 *   packets can be altered;
 * - what it passes on of the digest channel (IntegrityChannel.send) can be dropped, delayed or
 *   replayed.
 *
 * The mode is read from the file named by CASCADE_TEST_HOSTILE_CONTROL (polled every 20 ms), so
 * that a test lets viewers settle on an honest-looking relay and then switches it:
 * `none` | `flip` (bits of video payloads, headers intact) | `swap` (another stream's packets, layer for layer,
 * instead) | `replay` (media and digests from REPLAY_MS earlier) | `drop-digests` |
 * `delay-digests` (DELAY_MS late) | `blackhole` (no media at all, while it answers everything
 * else and passes the digests on). Every switch is logged as a JSON line
 * `{"hostile":"mode","mode":…,"at":<ms>}`.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { types } from 'mediasoup';
import { parseRtp, vp8DescriptorLength } from '@cascade/protocol';
import { IntegrityChannel, LocalStream } from '@cascade/sfu';

type Mode = 'none' | 'flip' | 'swap' | 'replay' | 'drop-digests' | 'delay-digests' | 'blackhole';
const MODES: readonly Mode[] = ['none', 'flip', 'swap', 'replay', 'drop-digests', 'delay-digests', 'blackhole'];
const REPLAY_MS = 10_000;
const DELAY_MS = 2000;
/** What is kept for a replay (ms). */
const BUFFER_MS = REPLAY_MS + 2000;

let mode: Mode = 'none';
const controlFile = process.env.CASCADE_TEST_HOSTILE_CONTROL;
if (controlFile) {
  const poll = () => {
    let next: string;
    try {
      next = readFileSync(controlFile, 'utf8').trim();
    } catch {
      return;
    }
    if (next === mode || !MODES.includes(next as Mode)) return;
    mode = next as Mode;
    console.log(JSON.stringify({ hostile: 'mode', mode, at: Date.now() }));
  };
  poll();
  setInterval(poll, 20).unref();
}
console.log(JSON.stringify({ hostile: 'loaded', at: Date.now() }));

// ------------------------------------------------------------------ the digest channel

const realSend = IntegrityChannel.prototype.send;
const digestLog: { at: number; channel: IntegrityChannel; message: Uint8Array }[] = [];
const replayedDigestsUpTo = new WeakMap<IntegrityChannel, number>();
IntegrityChannel.prototype.send = async function (this: IntegrityChannel, message: Uint8Array): Promise<void> {
  const now = Date.now();
  digestLog.push({ at: now, channel: this, message: message.slice() });
  while (digestLog.length > 0 && now - digestLog[0]!.at > BUFFER_MS) digestLog.shift();
  switch (mode) {
    case 'drop-digests':
      return;
    case 'delay-digests':
      setTimeout(() => void realSend.call(this, message), DELAY_MS).unref();
      return;
    case 'replay': {
      // The batches of REPLAY_MS ago, in place of today's.
      for (const e of digestLog) {
        if (e.channel !== this || e.at <= (replayedDigestsUpTo.get(this) ?? 0) || e.at > now - REPLAY_MS) continue;
        replayedDigestsUpTo.set(this, e.at);
        await realSend.call(this, e.message);
      }
      return;
    }
    default:
      replayedDigestsUpTo.set(this, now - REPLAY_MS);
      return realSend.call(this, message);
  }
};

// ------------------------------------------------------------------ the media

interface Sent {
  seq: number;
  ts: number;
}

/** One source's loop: packets in from the parent's pipe producer, out (maybe altered) to the producer viewers get. */
class Loop {
  readonly streamId: string;
  readonly kinds = new Map<number, 'audio' | 'video'>();
  /**
   * Our outgoing SSRCs per kind, one per simulcast layer, lowest first (for a swap: another
   * stream's layer k goes out as our layer k, so that every viewer gets the other stream's frames
   * whatever layer it is on), and the last seq/ts sent per SSRC.
   */
  readonly ssrcOf = new Map<'audio' | 'video', number[]>();
  readonly sent = new Map<number, Sent>();
  readonly buffer: { at: number; pkt: Buffer }[] = [];
  /** Per SSRC: offsets applied to what is sent instead (a replay or a swap). */
  readonly offsets = new Map<string, { seq: number; ts: number }>();
  replayedUpTo = 0;
  readonly socket: dgram.Socket;
  consumerPort = 0;
  producerPort = 0;

  constructor(streamId: string, socket: dgram.Socket) {
    this.streamId = streamId;
    this.socket = socket;
  }

  out(pkt: Buffer): void {
    this.socket.send(pkt, this.producerPort, '127.0.0.1');
  }
}

const loops = new Set<Loop>();

/** Send `pkt` (from some SSRC) as the continuation of our own SSRC `ssrc`, renumbered. */
function sendAs(loop: Loop, pkt: Buffer, ssrc: number, key: string): void {
  const rtp = parseRtp(pkt);
  if (!rtp) return;
  const last = loop.sent.get(ssrc) ?? { seq: rtp.sequenceNumber, ts: rtp.timestamp };
  let off = loop.offsets.get(key);
  if (!off) {
    off = { seq: (last.seq + 1 - rtp.sequenceNumber) & 0xffff, ts: (last.ts + 3000 - rtp.timestamp) >>> 0 };
    loop.offsets.set(key, off);
  }
  const copy = Buffer.from(pkt);
  const seq = (rtp.sequenceNumber + off.seq) & 0xffff;
  const ts = (rtp.timestamp + off.ts) >>> 0;
  copy.writeUInt16BE(seq, 2);
  copy.writeUInt32BE(ts, 4);
  copy.writeUInt32BE(ssrc, 8);
  loop.sent.set(ssrc, { seq, ts });
  loop.out(copy);
}

function onPacket(loop: Loop, pkt: Buffer): void {
  const now = Date.now();
  loop.buffer.push({ at: now, pkt });
  while (loop.buffer.length > 0 && now - loop.buffer[0]!.at > BUFFER_MS) loop.buffer.shift();
  if (mode === 'blackhole') return;
  const rtp = parseRtp(pkt);
  if (!rtp) return loop.out(pkt);
  const kind = loop.kinds.get(rtp.payloadType);
  // Another stream's packets go out as this one's instead.
  if (mode === 'swap') {
    for (const other of loops) {
      if (other === loop || other.streamId === loop.streamId || !kind) continue;
      const layer = loop.ssrcOf.get(kind)?.indexOf(rtp.ssrc) ?? -1;
      const ssrc = layer < 0 ? undefined : other.ssrcOf.get(kind)?.[layer];
      if (ssrc !== undefined) sendAs(other, pkt, ssrc, `swap:${loop.streamId}:${rtp.ssrc}`);
    }
  }
  if (mode === 'swap' && [...loops].some((o) => o.streamId !== loop.streamId)) return;
  if (mode === 'replay') {
    for (const e of loop.buffer) {
      if (e.at <= loop.replayedUpTo || e.at > now - REPLAY_MS) continue;
      loop.replayedUpTo = e.at;
      const old = parseRtp(e.pkt);
      if (old) sendAs(loop, e.pkt, old.ssrc, `replay:${old.ssrc}`);
    }
    return;
  }
  loop.offsets.clear();
  loop.replayedUpTo = now - REPLAY_MS;
  if (mode === 'flip' && kind === 'video') {
    const copy = Buffer.from(pkt);
    // Past the RTP header, the VP8 descriptor and the frame tag: the headers stay intact.
    const header = rtp.payload.byteOffset - pkt.byteOffset;
    const end = header + rtp.payload.length;
    for (let i = header + Math.max(0, vp8DescriptorLength(rtp.payload)) + 3; i < end; i += 7) copy[i] = copy[i]! ^ 0x5a;
    loop.sent.set(rtp.ssrc, { seq: rtp.sequenceNumber, ts: rtp.timestamp });
    return loop.out(copy);
  }
  loop.sent.set(rtp.ssrc, { seq: rtp.sequenceNumber, ts: rtp.timestamp });
  loop.out(pkt);
}

/** Put a loop between `source` (the parent pipe's producer) and what the stream's viewers consume. */
async function interpose(stream: LocalStream, source: types.Producer): Promise<types.Producer> {
  const router = await stream.router.primary();
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const loop = new Loop(stream.id, socket);
  const a = await router.createPipeTransport({ listenIp: { ip: '127.0.0.1' } });
  const b = await router.createPipeTransport({ listenIp: { ip: '127.0.0.1' } });
  const port = socket.address().port;
  await a.connect({ ip: '127.0.0.1', port });
  await b.connect({ ip: '127.0.0.1', port });
  loop.consumerPort = a.tuple.localPort;
  loop.producerPort = b.tuple.localPort;
  const consumer = await a.consume({ producerId: source.id });
  for (const c of consumer.rtpParameters.codecs) loop.kinds.set(c.payloadType, source.kind);
  loop.ssrcOf.set(source.kind, (consumer.rtpParameters.encodings ?? []).flatMap((e) => (e.ssrc === undefined ? [] : [e.ssrc])));
  const out = await b.produce({ kind: consumer.kind, rtpParameters: consumer.rtpParameters, paused: consumer.producerPaused });
  socket.on('message', (pkt, rinfo) => {
    if (rinfo.port === loop.consumerPort) onPacket(loop, pkt);
    // Feedback from viewers (key frame requests) goes back towards the parent.
    else if (rinfo.port === loop.producerPort) socket.send(pkt, loop.consumerPort, '127.0.0.1');
  });
  loops.add(loop);
  const end = () => {
    loops.delete(loop);
    a.close();
    b.close();
    socket.close();
  };
  consumer.observer.once('close', () => {
    out.close();
    end();
  });
  out.observer.once('close', () => {
    consumer.close();
  });
  return out;
}

const realSetSource = LocalStream.prototype.setSource;
LocalStream.prototype.setSource = function (this: LocalStream, producer: types.Producer): void {
  // Sources this relay makes of its parent's pipe (the loop's own producer is let through).
  if ((producer.appData as { hostile?: boolean }).hostile || producer.closed) return realSetSource.call(this, producer);
  void interpose(this, producer)
    .then((out) => {
      out.appData.hostile = true;
      realSetSource.call(this, out);
    })
    .catch((err) => {
      console.log(JSON.stringify({ hostile: 'loop failed', err: String(err) }));
      realSetSource.call(this, producer);
    });
};
