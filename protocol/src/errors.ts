/**
 * The one registry of Cascade error codes. Every error that crosses a process boundary
 * (HTTP body, WebSocket reply, close frame) carries one of these codes; clients branch on
 * the code (or on the error class built from it), never on the message.
 *
 * `status` is the HTTP status for REST answers and, as 4000 + status, the WebSocket close
 * code when the error is fatal for the connection.
 */
export const ErrorCodes = {
  // Protocol: the shape of what was sent.
  CASCADE_ERR_PROTOCOL_MALFORMED: { status: 400, message: 'message is not a valid JSON envelope' },
  CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE: { status: 400, message: 'unknown message type' },
  CASCADE_ERR_PROTOCOL_INVALID_PARAMS: { status: 400, message: 'invalid message parameters' },
  CASCADE_ERR_PROTOCOL_TOO_LARGE: { status: 413, message: 'message exceeds the size limit' },
  CASCADE_ERR_PROTOCOL_VERSION: { status: 426, message: 'unsupported protocol version' },
  CASCADE_ERR_PROTOCOL_OUT_OF_ORDER: { status: 409, message: 'message not allowed in the current session state' },
  CASCADE_ERR_PROTOCOL_RATE_LIMITED: { status: 429, message: 'too many messages' },
  CASCADE_ERR_PROTOCOL_IDLE: { status: 408, message: 'connection sent no request, or held nothing, for too long' },
  // Auth.
  CASCADE_ERR_AUTH_MISSING_TOKEN: { status: 401, message: 'a token is required' },
  CASCADE_ERR_AUTH_INVALID_TOKEN: { status: 401, message: 'token is invalid' },
  CASCADE_ERR_AUTH_EXPIRED_TOKEN: { status: 401, message: 'token has expired' },
  CASCADE_ERR_AUTH_FORBIDDEN: { status: 403, message: 'token does not allow this action' },
  CASCADE_ERR_AUTH_REVOKED_TOKEN: { status: 401, message: 'token has been revoked' },
  // Accounts (sign-up, sign-in, sessions).
  CASCADE_ERR_ACCOUNT_DISABLED: { status: 404, message: 'accounts are disabled on this deployment' },
  CASCADE_ERR_ACCOUNT_INVALID_NAME: { status: 400, message: 'names are 3-32 characters: letters, digits, _ . -, starting with a letter or digit' },
  CASCADE_ERR_ACCOUNT_WEAK_PASSWORD: { status: 400, message: 'password must have 10 to 256 characters' },
  CASCADE_ERR_ACCOUNT_NAME_TAKEN: { status: 409, message: 'this name is taken' },
  CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS: { status: 401, message: 'wrong name or password' },
  CASCADE_ERR_ACCOUNT_SIGNED_OUT: { status: 401, message: 'sign in first' },
  CASCADE_ERR_ACCOUNT_SESSION_INVALID: { status: 401, message: 'session cookie is invalid, expired or from another deployment' },
  CASCADE_ERR_ACCOUNT_RATE_LIMITED: { status: 429, message: 'too many attempts; try again later' },
  CASCADE_ERR_ACCOUNT_BUSY: { status: 503, message: 'too many sign-ins at once; try again in a moment' },
  CASCADE_ERR_ACCOUNT_CROSS_SITE: { status: 403, message: 'request from another site refused' },
  // Credits (the ledger).
  CASCADE_ERR_CREDITS_INSUFFICIENT: { status: 402, message: 'not enough points' },
  CASCADE_ERR_CREDITS_RECEIPT_INVALID: { status: 400, message: 'receipt figures are impossible' },
  CASCADE_ERR_CREDITS_RECEIPT_DUPLICATE: { status: 409, message: 'receipt already counted' },
  CASCADE_ERR_CREDITS_RECEIPT_UNPLACED: { status: 403, message: 'viewer was not placed on this node for this stream' },
  CASCADE_ERR_CREDITS_RECEIPT_CAPPED: { status: 422, message: 'receipt claims more than the stream could deliver; the excess is not credited' },
  // Streams.
  CASCADE_ERR_STREAM_NOT_FOUND: { status: 404, message: 'stream not found' },
  CASCADE_ERR_STREAM_NOT_LIVE: { status: 409, message: 'stream is not live yet' },
  CASCADE_ERR_STREAM_ENDED: { status: 410, message: 'stream has ended' },
  CASCADE_ERR_STREAM_ALREADY_LIVE: { status: 409, message: 'stream already has a broadcaster' },
  CASCADE_ERR_STREAM_INVALID_ID: { status: 400, message: 'invalid stream id' },
  CASCADE_ERR_STREAM_OWNER_LIMIT: { status: 429, message: 'this broadcaster already has its maximum of streams' },
  // Media (mediasoup objects).
  CASCADE_ERR_MEDIA_INVALID_RTP_PARAMETERS: { status: 400, message: 'invalid RTP parameters' },
  CASCADE_ERR_MEDIA_TRANSPORT_NOT_FOUND: { status: 404, message: 'transport not found' },
  CASCADE_ERR_MEDIA_CONSUMER_NOT_FOUND: { status: 404, message: 'consumer not found' },
  CASCADE_ERR_MEDIA_CANNOT_CONSUME: { status: 400, message: 'client cannot consume this stream' },
  CASCADE_ERR_MEDIA_LIMIT: { status: 429, message: 'per-session media limit reached' },
  CASCADE_ERR_MEDIA_WORKER_DIED: { status: 503, message: 'media worker died' },
  // Nodes and placement.
  CASCADE_ERR_NODE_CAPACITY: { status: 503, message: 'no node has room for this viewer' },
  CASCADE_ERR_NODE_DRAINING: { status: 503, message: 'node is draining' },
  CASCADE_ERR_NODE_SHUTTING_DOWN: { status: 503, message: 'node is shutting down' },
  CASCADE_ERR_NODE_WRONG_NODE: { status: 421, message: 'ticket was issued for another node' },
  CASCADE_ERR_NODE_GONE: { status: 502, message: 'the node serving this session is gone' },
  CASCADE_ERR_NODE_UNREACHABLE: { status: 504, message: 'the node serving this session cannot be reached right now' },
  // Relays (untrusted volunteers included).
  CASCADE_ERR_RELAY_ALREADY_REGISTERED: { status: 409, message: 'relay is already registered' },
  CASCADE_ERR_RELAY_NOT_REGISTERED: { status: 409, message: 'relay is not registered' },
  CASCADE_ERR_RELAY_INVALID_STATS: { status: 400, message: 'heartbeat figures are impossible' },
  CASCADE_ERR_RELAY_NOT_ASSIGNED: { status: 403, message: 'stream not assigned to this relay' },
  CASCADE_ERR_RELAY_UNREACHABLE: { status: 400, message: 'relay media address is not reachable' },
  CASCADE_ERR_RELAY_PARENT_LOST: { status: 502, message: 'relay lost its parent' },
  CASCADE_ERR_RELAY_INVALID_CAPACITY: { status: 400, message: 'declared capacity is impossible' },
  CASCADE_ERR_RELAY_ADDRESS: { status: 403, message: 'relay media address not allowed' },
  CASCADE_ERR_RELAY_UNKNOWN_SESSION: { status: 403, message: 'no such session on this relay' },
  // Stream integrity (signed frame digests): what a viewer or the origin's probe found wrong with what a node sent.
  CASCADE_ERR_INTEGRITY_MALFORMED: { status: 400, message: 'digest batch is not one, or is for another stream' },
  CASCADE_ERR_INTEGRITY_BAD_SIGNATURE: { status: 422, message: 'digest batch signature does not verify with the stream key' },
  CASCADE_ERR_INTEGRITY_STALE: { status: 422, message: 'digest batches replayed, out of order or too old' },
  CASCADE_ERR_INTEGRITY_DIGESTS_MISSING: { status: 422, message: 'no signed digests for the frames received (digest channel dropped or delayed)' },
  CASCADE_ERR_INTEGRITY_FRAME_MISMATCH: { status: 422, message: 'frames that match no signed digest (altered, inserted, swapped or replayed)' },
  CASCADE_ERR_INTEGRITY_FOREIGN_KEY: { status: 403, message: 'stream key announced by someone other than the origin' },
  CASCADE_ERR_INTEGRITY_STALLED: { status: 422, message: 'picture stopped: nothing new decoded while the stream is live' },
  CASCADE_ERR_INTEGRITY_UNSUPPORTED: { status: 501, message: 'this client cannot verify frames (no encoded transform)' },
  CASCADE_ERR_INTEGRITY_CONFIRMED: { status: 403, message: 'relay confirmed altering or withholding media' },
  // Control plane.
  CASCADE_ERR_STORE_UNAVAILABLE: { status: 503, message: 'topology store unavailable' },
  CASCADE_ERR_CONTROLLER_UNAVAILABLE: { status: 503, message: 'controller unavailable' },
  // SDP offers (WHIP, WHEP).
  CASCADE_ERR_SDP_INVALID: { status: 400, message: 'body is not a usable SDP offer' },
  CASCADE_ERR_SDP_UNSUPPORTED: { status: 406, message: 'offer asks for media Cascade cannot take' },
  // Recordings.
  CASCADE_ERR_RECORDING_NOT_FOUND: { status: 404, message: 'recording not found' },
  CASCADE_ERR_RECORDING_DISABLED: { status: 403, message: 'recording is not enabled on this deployment' },
  // Configuration.
  CASCADE_ERR_CONFIG_INVALID: { status: 500, message: 'invalid configuration' },
  // HTTP.
  CASCADE_ERR_HTTP_NOT_FOUND: { status: 404, message: 'no such route' },
  CASCADE_ERR_HTTP_BAD_REQUEST: { status: 400, message: 'malformed HTTP request' },
  CASCADE_ERR_HTTP_TIMEOUT: { status: 408, message: 'request not received in time' },
  CASCADE_ERR_HTTP_TOO_MANY_CONNECTIONS: { status: 429, message: 'too many connections from this address' },
  CASCADE_ERR_HTTP_SESSION_NOT_FOUND: { status: 404, message: 'no such WHIP/WHEP session' },
  CASCADE_ERR_HTTP_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed here' },
  CASCADE_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'unsupported Content-Type' },
  CASCADE_ERR_HTTP_PRECONDITION_FAILED: { status: 412, message: 'If-Match does not match the current ICE session' },
  CASCADE_ERR_HTTP_PRECONDITION_REQUIRED: { status: 428, message: 'If-Match is required' },
  // Client side (never sent by a server).
  CASCADE_ERR_CLIENT_CONNECTION: { status: 503, message: 'cannot reach the server' },
  CASCADE_ERR_CLIENT_TIMEOUT: { status: 504, message: 'request timed out' },
  CASCADE_ERR_CLIENT_MEDIA: { status: 400, message: 'cannot access camera or microphone' },
  CASCADE_ERR_CLIENT_CLOSED: { status: 499, message: 'client was stopped' },
  CASCADE_ERR_CLIENT_BLOCKED: { status: 403, message: 'the browser refused the connection' },
  // Load-test tool (load-tests/, never sent by a server): per-viewer failures in its reports.
  CASCADE_ERR_LOADTEST_USAGE: { status: 400, message: 'bad load-test arguments' },
  CASCADE_ERR_LOADTEST_JOIN_TIMEOUT: { status: 504, message: 'a simulated viewer did not join in time' },
  CASCADE_ERR_LOADTEST_NOT_STARTED: { status: 499, message: 'the test ended before this viewer was due' },
  CASCADE_ERR_LOADTEST_ICE: { status: 504, message: 'no ICE connectivity check was answered' },
  CASCADE_ERR_LOADTEST_DTLS: { status: 502, message: 'the DTLS handshake failed' },
  CASCADE_ERR_LOADTEST_SOCKET: { status: 500, message: 'the load generator could not open a socket' },
  CASCADE_ERR_LOADTEST_JANUS: { status: 502, message: 'Janus refused a request of the baseline benchmark' },
  CASCADE_ERR_LOADTEST_SINK_UNAVAILABLE: { status: 500, message: 'the load sink is not built (Go and pion missing)' },
  // Generic.
  CASCADE_ERR_INVALID_STATE: { status: 409, message: 'object is closed or in the wrong state' },
  CASCADE_ERR_INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ErrorCodes, value);
}

/** What goes on the wire. Never a stack or a cause. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

/**
 * Base class of every coded error. `message` may add detail to the registry's template;
 * `cause` keeps the original error for logs and is never serialised.
 */
export class CascadeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const base = ErrorCodes[code].message;
    super(detail ? `${base}: ${detail}` : base, options);
    this.name = 'CascadeError';
    this.code = code;
    this.status = ErrorCodes[code].status;
  }

  /** WebSocket close code used when this error ends a connection (4000 + HTTP status). */
  get closeCode(): number {
    return 4000 + this.status;
  }

  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}

export type MessageId = number | string;

/** A frame that is not a valid envelope; `requestId` is its id when one could be read. */
export class EnvelopeError extends CascadeError {
  readonly requestId: MessageId | null;

  constructor(detail: string, requestId: MessageId | null) {
    super('CASCADE_ERR_PROTOCOL_MALFORMED', detail);
    this.name = 'EnvelopeError';
    this.requestId = requestId;
  }
}

/** Thrown when an object is used after close() or in the wrong lifecycle state. */
export class InvalidStateError extends CascadeError {
  constructor(detail?: string) {
    super('CASCADE_ERR_INVALID_STATE', detail);
    this.name = 'InvalidStateError';
  }
}

export function isCascadeError(err: unknown): err is CascadeError {
  return err instanceof CascadeError;
}

/** Any thrown value as a CascadeError; unknown errors become INTERNAL with the original as cause. */
export function toCascadeError(err: unknown): CascadeError {
  if (err instanceof CascadeError) return err;
  return new CascadeError('CASCADE_ERR_INTERNAL', undefined, { cause: err });
}

/** Rebuild an error received from the wire; unknown codes degrade to INTERNAL. */
export function fromWireError(wire: unknown): CascadeError {
  const w = (wire ?? {}) as Partial<WireError>;
  const code = isErrorCode(w.code) ? w.code : 'CASCADE_ERR_INTERNAL';
  const err = new CascadeError(code);
  if (typeof w.message === 'string') err.message = w.message;
  return err;
}
