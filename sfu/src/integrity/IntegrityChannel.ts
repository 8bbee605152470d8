import type { types } from 'mediasoup';
import { CascadeError, INTEGRITY_LABEL, InvalidStateError, MAX_RECENT_BATCHES, MAX_RECENT_BATCH_CHARS, type DataChannelInfo, type Logger } from '@cascade/protocol';
import type { LocalStream } from '../LocalStream.js';
import type { StreamRouterHandle } from '../appData.js';

/** SCTP protocol name of the digest channel. */
export const INTEGRITY_PROTOCOL = 'cascade-integrity/1';

/**
 * Digest batches may be lost on the way (each one repeats the previous one's digests) but must
 * never be late: unordered, at most one retransmission, so that a lost packet never holds the
 * batches behind it back.
 */
const DELIVERY = { ordered: false, maxRetransmits: 1 } as const;
/** How far back a new viewer is handed the batches sent (ms): about as long as a frame waits for its digest. */
const RECENT_MS = 1000;

/**
 * One stream's digest channel on one node: a data producer on the stream's primary router that
 * every viewer and child pipe of the stream consumes. The origin sends the batches it signs on
 * it; a relay sends what its current parent's pipe brings (so that viewers keep their data
 * consumer when the relay changes parents). Created on first use; closed with the stream.
 */
export class IntegrityChannel {
  readonly #stream: LocalStream;
  readonly #log: Logger;
  #direct: Promise<{ transport: types.DirectTransport; producer: types.DataProducer; router: StreamRouterHandle }> | undefined;
  #closed = false;
  /** What was sent lately, for viewers that subscribe now (see recent()). */
  #recent: { at: number; base64: string }[] = [];

  static readonly #channels = new WeakMap<LocalStream, IntegrityChannel>();

  /** The channel of `stream` on this node (one per stream). */
  static of(stream: LocalStream, deps: { logger: Logger }): IntegrityChannel {
    let c = IntegrityChannel.#channels.get(stream);
    if (!c) {
      c = new IntegrityChannel(stream, deps);
      IntegrityChannel.#channels.set(stream, c);
    }
    return c;
  }

  private constructor(stream: LocalStream, deps: { logger: Logger }) {
    this.#stream = stream;
    this.#log = deps.logger.child({ component: 'IntegrityChannel', streamId: stream.id });
    stream.observer.once('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Send one message to every consumer of the channel (dropped silently if the channel cannot be made now). */
  async send(message: Uint8Array): Promise<void> {
    if (this.#closed) return;
    this.#remember(message);
    try {
      const { producer } = await this.#ensure();
      if (!producer.closed) producer.send(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
    } catch (err) {
      if (!this.#closed) this.#log.warn({ err }, 'cannot send on the digest channel');
    }
  }

  /**
   * A data consumer of the channel on `transport` (a viewer's WebRTC transport or a child's
   * pipe, both with SCTP), on `router` (the transport's).
   */
  async consumeOn(transport: types.Transport, router: StreamRouterHandle): Promise<DataChannelInfo> {
    if (this.#closed) throw new InvalidStateError('digest channel closed');
    const { producer, router: primary } = await this.#ensure();
    if (router !== primary) {
      if (router.appData.worker === primary.appData.worker) {
        // pipeToRouter cannot join two routers of one worker; the SDK's viewers are never put there.
        throw new CascadeError('CASCADE_ERR_INTEGRITY_UNSUPPORTED', 'digest channel not available on this router');
      }
      const piped = (router.appData.pipedData ??= new Map<string, Promise<void>>());
      let p = piped.get(producer.id);
      if (!p) {
        p = primary.pipeToRouter({ dataProducerId: producer.id, router }).then(() => undefined);
        piped.set(producer.id, p);
        p.catch(() => piped.delete(producer.id));
      }
      await p;
    }
    const dc = await transport.consumeData({ dataProducerId: producer.id, ...DELIVERY });
    return {
      id: dc.id,
      dataProducerId: dc.dataProducerId,
      sctpStreamParameters: dc.sctpStreamParameters as DataChannelInfo['sctpStreamParameters'],
      label: dc.label,
      protocol: dc.protocol,
    };
  }

  /**
   * The messages sent during the last second, oldest first (base64): a viewer subscribing now
   * gets them with its data consumer, so that the frames it already has (a failover's first key
   * frame) find their digests although their batches went out before its channel opened.
   */
  recent(now = Date.now()): string[] {
    return this.#recent.filter((m) => now - m.at <= RECENT_MS).map((m) => m.base64);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#recent = [];
    void this.#direct?.then((d) => d.transport.close(), () => {});
    this.#direct = undefined;
  }

  #remember(message: Uint8Array, now = Date.now()): void {
    if (message.byteLength * 4 > MAX_RECENT_BATCH_CHARS * 3) return;
    this.#recent.push({ at: now, base64: Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('base64') });
    while (this.#recent.length > MAX_RECENT_BATCHES || (this.#recent.length > 0 && now - this.#recent[0]!.at > RECENT_MS)) this.#recent.shift();
  }

  #ensure(): Promise<{ transport: types.DirectTransport; producer: types.DataProducer; router: StreamRouterHandle }> {
    if (this.#closed) return Promise.reject(new InvalidStateError('digest channel closed'));
    const make = async () => {
      const router = await this.#stream.router.primary();
      const transport = await router.createDirectTransport({ maxMessageSize: 256 * 1024 });
      const producer = await transport.produceData({ label: INTEGRITY_LABEL, protocol: INTEGRITY_PROTOCOL });
      return { transport, producer, router };
    };
    const current = this.#direct;
    if (!current) {
      this.#direct = make();
      this.#direct.catch(() => (this.#direct = undefined));
      return this.#direct;
    }
    // The primary router was replaced (its worker died): the channel moves with the stream.
    return current.then((d) => {
      if (!d.transport.closed) return d;
      if (this.#direct === current) {
        this.#direct = make();
        this.#direct.catch(() => (this.#direct = undefined));
      }
      return this.#direct!;
    });
  }
}
