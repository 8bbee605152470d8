import * as werift from 'werift';

const NAMES = [
  'RTCPeerConnection',
  'RTCSessionDescription',
  'RTCIceCandidate',
  'MediaStream',
  'MediaStreamTrack',
  'RTCRtpSender',
  'RTCRtpReceiver',
  'RTCRtpTransceiver',
] as const;

/**
 * mediasoup-client's Chrome111 handler looks the WebRTC classes up on globalThis; in Node we
 * put werift's there. Only test and load-test processes call this: they run nothing else.
 *
 * `twcc`: the peer connection offers transport-wide congestion control for video (werift
 * answers it with feedback, as a browser does), so that the server estimates each viewer's
 * bandwidth and picks its simulcast layer by it. Without it werift offers REMB, which it never
 * sends: the server then sends whatever layer the viewer asked for, link or no link.
 */
export function installWeriftGlobals(options: { twcc?: boolean } = {}): void {
  const g = globalThis as Record<string, unknown>;
  for (const name of NAMES) g[name] = (werift as unknown as Record<string, unknown>)[name];
  if (options.twcc) g.RTCPeerConnection = TwccPeerConnection;
}

class TwccPeerConnection extends werift.RTCPeerConnection {
  constructor(config: ConstructorParameters<typeof werift.RTCPeerConnection>[0] = {}) {
    super({
      ...config,
      codecs: {
        audio: [werift.useOPUS()],
        video: [
          werift.useVP8({ rtcpFeedback: [werift.useNACK(), werift.usePLI(), werift.useTWCC()] }),
          werift.useH264({ rtcpFeedback: [werift.useNACK(), werift.usePLI(), werift.useTWCC()] }),
        ],
      },
      headerExtensions: { audio: [werift.useSdesMid()], video: [werift.useSdesMid(), werift.useTransportWideCC()] },
    });
  }
}
