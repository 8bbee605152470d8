import type { types } from 'mediasoup';
import { CascadeError, type NodeParams, type TransportInfo } from '@cascade/protocol';
import type { MediaNode, NodeService } from './MediaNode.js';
import { ms } from './mediasoupErrors.js';
import type { Session } from './Session.js';
import type { ClientWebRtcTransport } from './appData.js';

/**
 * The router's codecs with the payload types the client gave them (codecs it gave no number
 * to are left out, RTX with them), or undefined when the client numbers them as the router does.
 */
export function renumbered(router: types.RtpCapabilities, client: types.RtpCapabilities): types.RtpCodecCapability[] | undefined {
  const same = (a: types.RtpCodecCapability, b: types.RtpCodecCapability) =>
    a.kind === b.kind &&
    a.mimeType.toLowerCase() === b.mimeType.toLowerCase() &&
    a.clockRate === b.clockRate &&
    (a.channels ?? 1) === (b.channels ?? 1) &&
    JSON.stringify(a.parameters ?? {}) === JSON.stringify(b.parameters ?? {});
  let differs = false;
  const codecs: types.RtpCodecCapability[] = [];
  for (const c of router.codecs ?? []) {
    if (/\/rtx$/i.test(c.mimeType)) continue;
    const theirs = (client.codecs ?? []).find((x) => same(x, c));
    if (!theirs || theirs.preferredPayloadType === undefined) continue;
    if (theirs.preferredPayloadType !== c.preferredPayloadType) differs = true;
    codecs.push({ ...c, preferredPayloadType: theirs.preferredPayloadType });
  }
  return differs && codecs.length > 0 ? codecs : undefined;
}

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
        const t = session.webRtcTransport(p.transportId);
        return { iceParameters: await ms(t.restartIce()) };
      });
  }

  async #create(session: Session, { direction, rtpCapabilities }: NodeParams<'transport.create'>): Promise<TransportInfo> {
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
    let transport: ClientWebRtcTransport;
    try {
      let router = role === 'viewer' ? await stream.router.routerForConsumer() : await stream.router.primary();
      // A player that numbers codecs its own way (a WHEP player) gets a router numbered likewise.
      if (role === 'viewer' && rtpCapabilities) {
        const codecs = renumbered(router.rtpCapabilities, rtpCapabilities as types.RtpCapabilities);
        if (codecs) router = await stream.router.routerNumbering(codecs);
      }
      transport = await this.#node.createWebRtcTransport(router, direction);
      if (session.closed) {
        transport.close();
        throw new CascadeError('CASCADE_ERR_CLIENT_CLOSED');
      }
      session.addTransport(transport);
    } finally {
      release();
    }
    // Whoever signals for a remote player (WHEP through a relay) sees the media side end only this way.
    transport.on('dtlsstatechange', (state) => {
      if (state === 'closed' || state === 'failed') session.notify('transport.state', { transportId: transport.id, state });
    });
    transport.on('icestatechange', (state) => {
      if (state === 'disconnected') session.notify('transport.state', { transportId: transport.id, state });
    });
    return {
      id: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
      ...(transport.sctpParameters ? { sctpParameters: transport.sctpParameters } : {}),
    };
  }

  async #connect(session: Session, { transportId, dtlsParameters }: NodeParams<'transport.connect'>): Promise<object> {
    const t = session.webRtcTransport(transportId);
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
