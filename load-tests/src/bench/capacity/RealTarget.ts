/**
 * A server under test on the real viewer path: WebRTC viewers (the Go sink) join it through its
 * own signalling and receive one audio+video stream.
 */
export interface RealTarget {
  readonly kind: 'cascade' | 'janus';
  /** Every process whose CPU is the server's (all pinned to the server core). */
  pids(): number[];
  /** What sink viewers join: the server kind, its signalling URL and the stream. */
  readonly join: { server: 'cascade' | 'janus'; url: string; streamId: string };
  /** Versions, settings and pinning, for the report. */
  info(): Record<string, unknown>;
  /** A reason if the server or its feed has stopped, else undefined. */
  failure(): string | undefined;
  /** Stops the server and its feed. Idempotent. */
  close(): Promise<void>;
}

/** The server cannot run here at all (not installed, wrong shape): the benchmark says so once. */
export class TargetUnavailableError extends Error {
  override readonly name = 'TargetUnavailableError';
}
