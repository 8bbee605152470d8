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
 */
export function installWeriftGlobals(): void {
  const g = globalThis as Record<string, unknown>;
  for (const name of NAMES) g[name] = (werift as unknown as Record<string, unknown>)[name];
}
