import { randomInt } from 'node:crypto';
import type { types } from 'mediasoup';
import { CascadeError, type Logger } from '@cascade/protocol';
import type { ClientTransportData, MediaNode } from '@cascade/sfu';
import { IngestSession, publishLocally, type Published } from './IngestSession.js';

export type RtpVideoCodec = 'VP8' | 'H264';

/** Where and how one track is to be sent. */
export interface RtpTrackTarget {
  kind: 'audio' | 'video';
  codec: 'VP8' | 'H264' | 'opus';
  /** Address and ports to send to (the origin's announced address; RTCP on its own port). */
  ip: string;
  rtpPort: number;
  rtcpPort: number;
  payloadType: number;
  ssrc: number;
  clockRate: number;
  channels?: number;
}

export interface RtpIngestOptions {
  /** Media stopping this long ends the session (the stream waits for a new one), ms. */
  idleTimeoutMs: number;
  /** Time the sender has to start once the ports are handed out, ms. */
  startTimeoutMs: number;
  requestTimeoutMs: number;
}

interface Made {
  transport: types.PlainTransport<ClientTransportData>;
  /** The transport's producers (mediasoup does not list them), for the diagnostics. */
  producers: Set<types.Producer>;
  target: RtpTrackTarget;
}

const CODECS: Record<RtpTrackTarget['codec'], Omit<types.RtpCodecParameters, 'payloadType'> & { payloadType: number }> = {
  // The payload types ffmpeg is told to use (-payload_type); any dynamic one would do.
  VP8: { mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [] },
  // ffmpeg packetizes H.264 in mode 1 (FU-A); the router forwards Constrained Baseline.
  H264: {
    mimeType: 'video/H264',
    payloadType: 96,
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
    rtcpFeedback: [],
  },
  opus: { mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, rtcpFeedback: [] },
};

/**
 * Plain RTP ingest (ffmpeg, GStreamer, hardware encoders without WebRTC): one mediasoup
 * PlainTransport per track on the stream's router, learning the sender's address from its
 * first packet (comedia), each fed into a producer through the origin's own signalling, so the
 * stream has the usual lifecycle. Unencrypted, and whoever sends first to a port owns it:
 * for networks the operator trusts (rtpIngest.enabled is off by default).
 */
export class RtpIngestSession extends IngestSession {
  readonly tracks: RtpTrackTarget[];
  readonly #diagnostics: ReturnType<typeof setInterval>;

  static async create(
    node: MediaNode,
    request: { token: string; owner: string; title?: string; remoteAddress: string; video: RtpVideoCodec | undefined; audio: boolean },
    options: RtpIngestOptions,
    deps: { logger: Logger },
  ): Promise<RtpIngestSession> {
    if (!request.video && !request.audio) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'ask for video, audio or both');
    return publishLocally(node, request, options, async (published) => {
      const stream = node.stream(published.streamId);
      if (!stream) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', published.streamId);
      const router = await stream.router.primary();
      const listen = node.pipeListenIp;
      const made: Made[] = [];
      const wanted = [...(request.video ? [['video', request.video] as const] : []), ...(request.audio ? [['audio', 'opus'] as const] : [])];
      for (const [kind, codec] of wanted) {
        // Counted before the await, as for any transport of a session.
        const release = published.session.reserveTransport();
        let transport: types.PlainTransport<ClientTransportData>;
        try {
          transport = await router.createPlainTransport<ClientTransportData>({
            listenIp: { ip: listen.ip, announcedIp: listen.announcedIp },
            rtcpMux: false,
            comedia: true,
            // What PublisherService checks before it lets a transport carry a producer.
            appData: { direction: 'send', router },
          });
          published.session.addTransport(transport);
        } finally {
          release();
        }
        const producers = new Set<types.Producer>();
        transport.observer.on('newproducer', (p) => producers.add(p));
        const c = CODECS[codec];
        const ssrc = randomInt(1, 2 ** 31);
        const rtpParameters: types.RtpParameters = {
          codecs: [c],
          encodings: [{ ssrc }],
          rtcp: { cname: `cascade-rtp-${kind}`, reducedSize: false, mux: false },
        };
        await published.client.request('producer.create', { transportId: transport.id, kind, rtpParameters: rtpParameters as never });
        made.push({
          transport,
          producers,
          target: {
            kind,
            codec,
            ip: listen.announcedIp || listen.ip,
            rtpPort: transport.tuple.localPort,
            rtcpPort: transport.rtcpTuple!.localPort,
            payloadType: c.payloadType,
            ssrc,
            clockRate: c.clockRate,
            ...(c.channels ? { channels: c.channels } : {}),
          },
        });
      }
      return new RtpIngestSession(published, request.owner, made, options, deps.logger);
    });
  }

  private constructor(
    published: Published,
    owner: string,
    made: Made[],
    options: RtpIngestOptions,
    logger: Logger,
  ) {
    super(
      published,
      owner,
      { transports: made.map((m) => m.transport), idleTimeoutMs: options.idleTimeoutMs, firstMediaTimeoutMs: options.startTimeoutMs, what: 'RTP' },
      logger,
    );
    this.tracks = made.map((m) => m.target);
    for (const { transport, target } of made) {
      transport.on('tuple', (t) => this.log.info({ kind: target.kind, from: `${t.remoteIp}:${t.remotePort}`, port: target.rtpPort }, 'RTP ingest: sender found'));
    }
    // The usual mistakes (wrong -ssrc, wrong -payload_type, the tracks swapped) are packets that
    // reach a port and match nothing: say so once per track, with what to send instead.
    const warned = new Set<string>();
    this.#diagnostics = setInterval(() => {
      for (const { transport, producers, target } of made) {
        if (warned.has(target.kind)) continue;
        void Promise.all([transport.getStats(), ...[...producers].map((p) => p.getStats())])
          .then(([tStats, ...pStats]) => {
            const received = tStats[0]?.bytesReceived ?? 0;
            const matched = pStats.flat().reduce((n, s) => n + (s.byteCount ?? 0), 0);
            if (received > 10_000 && matched === 0 && !warned.has(target.kind)) {
              warned.add(target.kind);
              this.log.warn(
                { kind: target.kind, port: target.rtpPort, expected: { ssrc: target.ssrc, payloadType: target.payloadType, codec: target.codec } },
                'RTP ingest: packets arrive on this port but match no track: send this track here with the -ssrc and -payload_type given',
              );
            }
          })
          .catch(() => {});
      }
    }, 3000);
    this.#diagnostics.unref();
    this.once('close', () => clearInterval(this.#diagnostics));
    this.log.info({ tracks: this.tracks.map((t) => `${t.kind} ${t.codec} ${t.ip}:${t.rtpPort}`) }, 'RTP ingest ready');
  }
}
