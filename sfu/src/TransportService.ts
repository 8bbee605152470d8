import type { types } from 'mediasoup';
import { CascadeError, type NodeParams, type TransportInfo } from '@cascade/protocol';
import type { MediaNode, NodeService } from './MediaNode.js';
import { ms } from './mediasoupErrors.js';
import type { Session } from './Session.js';

/**
 * WebRTC transports for publishers (send, on the stream's primary router) and viewers (recv,
 * on a router with room). One per direction per session.
 */
export class TransportService implements NodeService {
  readonly #node: MediaNode;

  constructor(node: MediaNode) {
    this.#node = node;
  }

  attach(session: Session): void {
    session.peer
      .handle('transport.create', (p) => this.#create(session, p))
      .handle('transport.connect', (p) => this.#connect(session, p))
      .handle('transport.restartIce', async (p) => {
        const t = session.transport(p.transportId);
        return { iceParameters: await ms(t.restartIce()) };
      });
  }

  async #create(session: Session, { direction }: NodeParams<'transport.create'>): Promise<TransportInfo> {
    const role = session.role;
    if (role !== 'viewer' && role !== 'publisher') {
      throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'send stream.publish or stream.watch first');
    }
    const expected = role === 'viewer' ? 'recv' : 'send';
    if (direction !== expected) {
      throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', `a ${role} may only create a ${expected} transport`);
    }
    const stream = this.#node.stream(session.streamId!);
    if (!stream) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', session.streamId);
    // Counted before the first await: a burst of requests cannot all pass the limit.
    const release = session.reserveTransport();
    let transport: types.WebRtcTransport;
    try {
      const router = role === 'viewer' ? await stream.router.routerForConsumer() : await stream.router.primary();
      transport = await this.#node.createWebRtcTransport(router, direction);
      if (session.closed) {
        transport.close();
        throw new CascadeError('CASCADE_ERR_CLIENT_CLOSED');
      }
      session.addTransport(transport);
    } finally {
      release();
    }
    return {
      id: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
    };
  }

  async #connect(session: Session, { transportId, dtlsParameters }: NodeParams<'transport.connect'>): Promise<object> {
    const t = session.transport<types.WebRtcTransport>(transportId);
    if (t.appData.connected) throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'transport already connected');
    if (t.appData.connecting) throw new CascadeError('CASCADE_ERR_PROTOCOL_OUT_OF_ORDER', 'transport.connect already in progress');
    // In progress while the worker answers (a second call is refused); connected only once it
    // succeeded, so that a call the worker refused (bad DTLS parameters) can be retried.
    t.appData.connecting = true;
    try {
      await ms(t.connect({ dtlsParameters: dtlsParameters as types.DtlsParameters }));
      t.appData.connected = true;
    } finally {
      t.appData.connecting = false;
    }
    return {};
  }
}
