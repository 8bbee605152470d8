import type { types } from 'mediasoup';
import type { Logger } from '@cascade/protocol';
import { IntegrityChannel, type LocalStream } from '@cascade/sfu';

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
      consumer.on('message', (message: Buffer) => {
        this.forward(message);
        if (!first || !missed) return;
        first = false;
        missed().then(
          (recent) => {
            // Viewers drop the copies they already have (by sequence number).
            if (generation === this.#generation && !this.#closed) for (const b of recent) this.forward(Buffer.from(b, 'base64'));
          },
          (err) => this.#log.debug({ err }, 'cannot fetch the batches missed from the parent'),
        );
      });
    } catch (err) {
      if (!source.closed && !this.#closed) this.#log.warn({ err }, 'cannot follow the parent digest channel');
    }
  }

  /** One message from the parent, passed on to this relay's viewers and children. */
  forward(message: Uint8Array): void {
    void this.#channel.send(message);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#consumer?.close();
    this.#direct?.close();
  }
}
