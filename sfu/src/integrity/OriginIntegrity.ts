import { TypedEmitter, type Logger } from '@cascade/protocol';
import type { LocalStream } from '../LocalStream.js';
import type { MediaNode } from '../MediaNode.js';
import { IntegrityChannel } from './IntegrityChannel.js';
import { StreamDigester, type StreamDigesterOptions } from './StreamDigester.js';
import { StreamKey } from './StreamKey.js';

/**
 * The trust anchor on an origin: every stream that starts here gets its own key and a
 * StreamDigester, whatever its ingest (browser, WHIP, RTP), since all of them become sources of
 * the stream on this node. The public key goes into the stream's record (see PublisherService).
 */
export type OriginIntegrityObserverEvents = {
  newdigester: [digester: StreamDigester];
  listenererror: [event: string, error: unknown];
};

export class OriginIntegrity {
  readonly observer = new TypedEmitter<OriginIntegrityObserverEvents>();
  readonly #digesters = new Map<string, StreamDigester>();
  readonly #options: StreamDigesterOptions;
  readonly #log: Logger;

  constructor(node: MediaNode, options: StreamDigesterOptions, deps: { logger: Logger }) {
    this.#options = options;
    this.#log = deps.logger;
    node.observer.on('newstream', (s) => this.#attach(s));
    for (const s of node.streams) this.#attach(s);
  }

  /** The public key of a stream carried here (base64 SPKI), if it has one. */
  publicKey(streamId: string): string | undefined {
    return this.#digesters.get(streamId)?.publicKey;
  }

  digester(streamId: string): StreamDigester | undefined {
    return this.#digesters.get(streamId);
  }

  #attach(stream: LocalStream): void {
    if (stream.depth !== 0 || stream.closed) return;
    const d = new StreamDigester(stream, IntegrityChannel.of(stream, { logger: this.#log }), new StreamKey(), this.#options, { logger: this.#log });
    this.#digesters.set(stream.id, d);
    this.observer.safeEmit('newdigester', d);
    d.observer.once('close', () => {
      if (this.#digesters.get(stream.id) === d) this.#digesters.delete(stream.id);
    });
  }
}
