/** One SFU under test, fed by one RTP stream, forwarding it to viewers added in steps. */
export interface SfuTarget {
  /** 'mediasoup' or 'janus'. */
  readonly kind: string;
  /** The process whose CPU is the SFU's forwarding cost (mediasoup worker, janus). */
  readonly pid: number;
  /** Where the broadcaster (ffmpeg) sends RTP and RTCP. */
  readonly ingress: { port: number; rtcpPort: number };
  /** Adds one viewer per sink port: SRTP (AES_CM_128_HMAC_SHA1_80) to 127.0.0.1:<port>. */
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
/** Key and salt for every viewer's SRTP (30 bytes, base64): only the cost matters here, not secrecy. */
export const SRTP_KEY_BASE64 = Buffer.alloc(30, 0x5a).toString('base64');
