import type { types } from 'mediasoup';
import type { Logger } from '@cascade/protocol';
import { IntegrityChannel, type LocalStream } from '@cascade/sfu';

/**
 * No batch from the parent for this long (ms; the origin sends one every 100 ms, frames or not):
 * the pipe's channel is stuck, and the parent is asked over signalling (TCP, which repairs a loss
 * in a few hundred ms) for what it sent lately. An SCTP packet lost on a lossy link waits for its
 * retransmission timeout (a second at least in usrsctp) while the congestion window holds back
 * what follows, unordered or not. Traced in the 2 % loss test: every viewer of the deeper relay
 * got no batch for 0.7 s at once, and one called its honest relay unverified; asking its relay
 * could not help, the relay had none either.
 */
const STUCK_AFTER_MS = 300;
/** While it stays stuck, asked again this often (ms). */
const ASK_AGAIN_MS = 500;
/** Messages remembered, so that none is sent on twice (a fetch brings the last second's). */
const REMEMBERED = 40;

/**
 * A relay's side of a stream's digest channel: what the current parent's pipe brings (the
 * origin's signed batches) is sent on, as it is, on this relay's own channel for the stream,
 * which its viewers and child pipes consume. Following a new parent does not touch them.
 *
 * The relay cannot forge, reorder or age what it forwards without viewers noticing (every batch
 * is signed by the origin and dated); it can only fail to forward, which viewers notice too.
 */
export class IntegrityForwarder {
  readonly #stream: LocalStream;
  readonly #channel: IntegrityChannel;
  readonly #log: Logger;
  #direct: types.DirectTransport | undefined;
  #consumer: types.DataConsumer | undefined;
  #generation = 0;
  /** Base64 of the messages sent on lately, oldest first (see REMEMBERED). */
  readonly #sent = new Set<string>();
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(stream: LocalStream, deps: { logger: Logger }) {
    this.#stream = stream;
    this.#channel = IntegrityChannel.of(stream, deps);
    this.#log = deps.logger.child({ component: 'IntegrityForwarder', streamId: stream.id });
    stream.observer.once('close', () => this.close());
  }

  /**
   * Forward from this data producer (the adopted pipe's) from now on. `missed` fetches what the
   * parent sent during the last second: asked once the pipe's channel delivers (it is up), since
   * the batches sent while it was being set up never came on it, and without them the viewers
   * here hold their first frames from the new parent (a key frame) until they expire.
   */
  async follow(source: types.DataProducer | undefined, missed?: () => Promise<string[]>): Promise<void> {
    if (this.#closed) return;
    const generation = ++this.#generation;
    clearInterval(this.#watchdog);
    const previous = this.#consumer;
    this.#consumer = undefined;
    previous?.close();
    if (!source || source.closed) {
      this.#log.warn({}, 'parent sends no digest channel: viewers here cannot verify');
      return;
    }
    try {
      const router = await this.#stream.router.primary();
      if (!this.#direct || this.#direct.closed) this.#direct = await router.createDirectTransport({ maxMessageSize: 256 * 1024 });
      const consumer = await this.#direct.consumeData({ dataProducerId: source.id });
      // Only the latest parent's channel is passed on (a newer follow() may have started meanwhile).
      if (this.#closed || source.closed || generation !== this.#generation) {
        consumer.close();
        return;
      }
      this.#consumer = consumer;
      let first = true;
      let lastAt = 0;
      let askedAt = 0;
      let asking = false;
      const fetchMissed = () => {
        if (!missed || asking) return;
        asking = true;
        askedAt = Date.now();
        missed()
          .then(
            (recent) => {
              if (generation === this.#generation && !this.#closed) for (const b of recent) this.forward(Buffer.from(b, 'base64'));
            },
            (err) => this.#log.debug({ err }, 'cannot fetch the batches missed from the parent'),
          )
          .finally(() => (asking = false));
      };
      consumer.on('message', (message: Buffer) => {
        lastAt = Date.now();
        this.forward(message);
        if (!first) return;
        first = false;
        fetchMissed();
      });
      // Once the channel has delivered: stuck channels are asked around (see STUCK_AFTER_MS).
      this.#watchdog = setInterval(() => {
        const now = Date.now();
        if (!first && now - lastAt >= STUCK_AFTER_MS && now - askedAt >= ASK_AGAIN_MS) fetchMissed();
      }, 100);
      this.#watchdog.unref();
    } catch (err) {
      if (!source.closed && !this.#closed) this.#log.warn({ err }, 'cannot follow the parent digest channel');
    }
  }

  /** One message from the parent, passed on to this relay's viewers and children (once: a fetch brings copies). */
  forward(message: Uint8Array): void {
    const key = Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('base64');
    if (this.#sent.has(key)) return;
    this.#sent.add(key);
    if (this.#sent.size > REMEMBERED) this.#sent.delete(this.#sent.values().next().value!);
    void this.#channel.send(message);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#watchdog);
    this.#consumer?.close();
    this.#direct?.close();
  }
}
