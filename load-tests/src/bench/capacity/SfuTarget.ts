/** One SFU under test, fed by one RTP stream, forwarding it to viewers added in steps. */
export interface SfuTarget {
  /** 'mediasoup' or 'janus'. */
  readonly kind: string;
  /** The process whose CPU is the SFU's forwarding cost (mediasoup worker, janus). */
  readonly pid: number;
  /** Where the broadcaster (ffmpeg) sends RTP and RTCP. */
  readonly ingress: { port: number; rtcpPort: number };
  /** Adds one viewer per sink port: SRTP (AES_CM_128_HMAC_SHA1_80, key srtpKeyForPort) to 127.0.0.1:<port>. */
  addViewers(ports: readonly number[]): Promise<void>;
  /** Stops the SFU and everything it started. Idempotent. */
  close(): Promise<void>;
  /** Versions, settings and pinning, for the report. */
  info(): Record<string, unknown>;
}

/** The broadcaster's SSRC. Janus maps a remote publisher's SSRC to its m-line: 1000 is mindex 0. */
export const INGRESS_SSRC = 1000;
/** The broadcaster's VP8 payload type. */
export const INGRESS_PT = 101;
/**
 * The SRTP master key and salt (30 bytes, base64) of the viewer on sink port `port`. Every
 * viewer gets its own key, as WebRTC viewers do (DTLS-SRTP): Janus shares one SRTP context,
 * and encrypts each packet once, among rtp_forwarders given the same key, which would hide
 * the per-viewer encryption cost. Only the cost matters here, not secrecy.
 */
export function srtpKeyForPort(port: number): string {
  const key = Buffer.alloc(30, 0x5a);
  key.writeUInt32BE(port, 0);
  key.writeUInt32BE((port ^ 0x9e3779b9) >>> 0, 26);
  return key.toString('base64');
}
