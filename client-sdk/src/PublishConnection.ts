import type { types as msc } from 'mediasoup-client';
import { CascadeError, type IceServer, type Logger } from '@cascade/protocol';
import { ConnectionError, typedError } from './errors.js';
import { closeError, SignalClient, type KeepAliveOptions, type WebSocketCtor } from './SignalClient.js';
import type { DeviceCache } from './DeviceCache.js';
import { videoEncodings, type SimulcastLayer } from './quality.js';

/** What a Broadcast hands each publishing attempt (its options resolved, and where to report). */
export interface PublishConnectionOptions {
  /** The origin's http(s) URL. */
  url: string;
  token: string;
  stream: MediaStream;
  /** Publish under this id (the caller's, or the one the origin gave earlier); otherwise the origin picks. */
  streamId?: string;
  title?: string;
  /** Taking up again a stream this Broadcast published before its connection was lost. */
  resume: boolean;
  simulcast: readonly SimulcastLayer[] | false | undefined;
  /** bps, without simulcast. */
  maxVideoBitrate: number;
  videoCodec: 'vp8' | 'h264';
  /** ms. */
  timeoutMs: number;
  keepAlive?: KeepAliveOptions | false;
  WebSocket?: WebSocketCtor;
  devices: DeviceCache;
  logger: Logger;
  /**
   * The origin took the stream under this id. Called before the media is set up: an attempt
   * that fails after it still tells the id, and the next attempt resumes that stream.
   */
  onPublished(streamId: string): void;
  /** The origin's count of the stream's viewers (from the moment it is published). */
  onViewers(count: number): void;
  /**
   * The signalling closed or the media transport failed. Also called while the attempt is still
   * under way: the Broadcast acts only on the connection it holds.
   */
  onLost(conn: BroadcastConnection, cause: Error): void;
}

/**
 * What a Broadcast uses of its connection to the origin (each start and reconnect makes one):
 * a PublishConnection, or a test's fake driven without sockets or WebRTC.
 */
export interface BroadcastConnection {
  readonly producers: msc.Producer[];
  /** The signalling is closed: there is nothing left to unpublish over. */
  readonly closed: boolean;
  /** Ask the origin to end the stream; resolves either way (refused, timed out after `timeoutMs`). */
  unpublish(timeoutMs: number): Promise<void>;
  /** Close the producers, the transport and the signalling, without telling anyone. */
  close(): void;
}

/**
 * A broadcaster's session with its origin: one signalling connection, a send transport and a
 * producer per live track. It does not reconnect; `Broadcast` does (and resumes the stream).
 */
export class PublishConnection implements BroadcastConnection {
  readonly producers: msc.Producer[] = [];
  readonly #signal: SignalClient;
  readonly #transport: msc.Transport;

  static async open(o: PublishConnectionOptions): Promise<PublishConnection> {
    const signal = await SignalClient.connect(o.url, {
      ...(o.WebSocket ? { WebSocket: o.WebSocket } : {}),
      ...(o.keepAlive !== undefined ? { keepAlive: o.keepAlive } : {}),
      timeoutMs: o.timeoutMs,
    });
    try {
      const res = await signal.request('stream.publish', {
        token: o.token,
        ...(o.streamId ? { streamId: o.streamId } : {}),
        ...(o.title ? { title: o.title } : {}),
        resume: o.resume,
      });
      o.onPublished(res.streamId);
      const device = await o.devices.get(res.rtpCapabilities as msc.RtpCapabilities);
      const info = await signal.request('transport.create', { direction: 'send' });
      const transport = device.createSendTransport({
        id: info.id,
        iceParameters: info.iceParameters as unknown as msc.IceParameters,
        iceCandidates: info.iceCandidates as unknown as msc.IceCandidate[],
        dtlsParameters: info.dtlsParameters as unknown as msc.DtlsParameters,
        iceServers: res.iceServers as IceServer[] as RTCIceServer[],
      });
      transport.on('connect', ({ dtlsParameters }, cb, eb) => {
        signal.request('transport.connect', { transportId: transport.id, dtlsParameters: dtlsParameters as never }).then(() => cb(), eb);
      });
      transport.on('produce', ({ kind, rtpParameters }, cb, eb) => {
        signal
          .request('producer.create', { transportId: transport.id, kind, rtpParameters: rtpParameters as never })
          .then(({ id }) => cb({ id }), eb);
      });
      const conn = new PublishConnection(signal, transport);
      signal.onNotification('stream.viewers', ({ viewers }) => o.onViewers(viewers));
      signal.on('close', (code, reason) => o.onLost(conn, closeError(code, reason)));
      transport.on('connectionstatechange', (s) => {
        if (s === 'failed') o.onLost(conn, new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'media transport failed'));
      });
      const encodings = videoEncodings(o.simulcast, o.maxVideoBitrate, o.videoCodec);
      const codec = device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === `video/${o.videoCodec}`);
      if (!codec) throw new CascadeError('CASCADE_ERR_CLIENT_MEDIA', `this browser cannot send ${o.videoCodec}`);
      const tracks = o.stream.getTracks().filter((t) => t.readyState === 'live');
      if (tracks.length === 0) throw new CascadeError('CASCADE_ERR_CLIENT_MEDIA', 'the MediaStream has no live track');
      for (const track of tracks) {
        if (!device.canProduce(track.kind as msc.MediaKind)) continue;
        const producer =
          track.kind === 'video'
            ? await transport.produce({
                track,
                codec,
                encodings,
                codecOptions: { videoGoogleStartBitrate: 1000 },
                stopTracks: false,
              })
            : await transport.produce({ track, stopTracks: false });
        conn.producers.push(producer);
      }
      o.logger.info({ streamId: res.streamId, resumed: res.resumed, producers: conn.producers.length }, 'broadcasting');
      return conn;
    } catch (err) {
      signal.close();
      throw typedError(err);
    }
  }

  private constructor(signal: SignalClient, transport: msc.Transport) {
    this.#signal = signal;
    this.#transport = transport;
  }

  get closed(): boolean {
    return this.#signal.closed;
  }

  async unpublish(timeoutMs: number): Promise<void> {
    await this.#signal.request('stream.unpublish', {}, timeoutMs).catch(() => {});
  }

  close(): void {
    for (const p of this.producers) p.close();
    try {
      this.#transport.close();
    } catch {
      // already closed
    }
    this.#signal.close();
  }
}
