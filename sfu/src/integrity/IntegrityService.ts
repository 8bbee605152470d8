import { CascadeError, type NodeParams, type NodeResult } from '@cascade/protocol';
import type { MediaNode, NodeService } from '../MediaNode.js';
import type { Session } from '../Session.js';
import { IntegrityChannel } from './IntegrityChannel.js';

/**
 * `integrity.subscribe`: a viewer of a stream carried here receives the stream's digest channel
 * on its recv transport (the digests come from the origin, signed; this node only passes them on).
 * `integrity.recent`: a viewer or child relay whose channel just opened gets what it missed.
 */
export class IntegrityService implements NodeService {
  readonly #node: MediaNode;

  constructor(node: MediaNode) {
    this.#node = node;
  }

  attach(session: Session): void {
    session.peer.handle('integrity.subscribe', (p) => this.#subscribe(session, p));
    session.peer.handle('integrity.recent', () => {
      const streamId = session.role === 'pipe' ? session.requireRole('pipe') : session.requireRole('viewer');
      const stream = this.#node.stream(streamId);
      if (!stream) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', streamId);
      return { recent: IntegrityChannel.of(stream, { logger: session.log }).recent() };
    });
  }

  async #subscribe(session: Session, p: NodeParams<'integrity.subscribe'>): Promise<NodeResult<'integrity.subscribe'>> {
    const streamId = session.requireRole('viewer');
    const stream = this.#node.stream(streamId);
    if (!stream) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', streamId);
    const transport = session.webRtcTransport(p.transportId);
    if (transport.appData.direction !== 'recv' || !transport.sctpParameters) {
      throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'the digest channel needs a recv transport with SCTP');
    }
    if (transport.appData.integrity) throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'already subscribed to the digest channel');
    transport.appData.integrity = true;
    try {
      const channel = IntegrityChannel.of(stream, { logger: session.log });
      const dataConsumer = await channel.consumeOn(transport, transport.appData.router);
      return { dataConsumer, recent: channel.recent() };
    } catch (err) {
      transport.appData.integrity = false;
      throw err;
    }
  }
}
