import { CascadeError, type ErrorCode } from '@cascade/protocol';

/**
 * Typed errors of the SDK. Every one keeps the server's stable `code`; callers (and the
 * reconnect logic) branch on the class.
 */
export class ConnectionError extends CascadeError {
  override name = 'ConnectionError';
}
export class AuthError extends CascadeError {
  override name = 'AuthError';
}
export class StreamNotFoundError extends CascadeError {
  override name = 'StreamNotFoundError';
}
export class StreamEndedError extends CascadeError {
  override name = 'StreamEndedError';
}
export class StreamBusyError extends CascadeError {
  override name = 'StreamBusyError';
}
export class CapacityError extends CascadeError {
  override name = 'CapacityError';
}
export class MediaError extends CascadeError {
  override name = 'MediaError';
}
export class ProtocolError extends CascadeError {
  override name = 'ProtocolError';
}

type Ctor = new (code: ErrorCode, detail?: string, options?: { cause?: unknown }) => CascadeError;

const BY_CODE: Partial<Record<ErrorCode, Ctor>> = {
  CASCADE_ERR_STREAM_NOT_FOUND: StreamNotFoundError,
  CASCADE_ERR_STREAM_INVALID_ID: StreamNotFoundError,
  CASCADE_ERR_STREAM_ENDED: StreamEndedError,
  CASCADE_ERR_STREAM_ALREADY_LIVE: StreamBusyError,
  CASCADE_ERR_NODE_CAPACITY: CapacityError,
  CASCADE_ERR_CLIENT_MEDIA: MediaError,
  CASCADE_ERR_MEDIA_CANNOT_CONSUME: MediaError,
  CASCADE_ERR_MEDIA_INVALID_RTP_PARAMETERS: MediaError,
};

/**
 * A browser's refusal (a DOMException named SecurityError, e.g. an insecure WebSocket from a
 * secure page) carries a numeric `code` of its own: it becomes CLIENT_BLOCKED, never a code the
 * page would take for one of ours.
 */
function fromForeign(err: unknown): CascadeError {
  const name = (err as { name?: unknown })?.name;
  const message = String((err as Error)?.message ?? err);
  if (name === 'SecurityError' || name === 'NotAllowedError') return new CascadeError('CASCADE_ERR_CLIENT_BLOCKED', message, { cause: err });
  return new CascadeError('CASCADE_ERR_INTERNAL', message, { cause: err });
}

/** The SDK class for a coded error; the message is kept. */
export function typedError(err: unknown): CascadeError {
  const e = err instanceof CascadeError ? err : fromForeign(err);
  let Cls: Ctor | undefined = BY_CODE[e.code];
  if (!Cls) {
    if (e.code.startsWith('CASCADE_ERR_AUTH_')) Cls = AuthError;
    else if (e.code.startsWith('CASCADE_ERR_PROTOCOL_')) Cls = ProtocolError;
    else if (
      e.code.startsWith('CASCADE_ERR_CLIENT_') ||
      e.code.startsWith('CASCADE_ERR_NODE_') ||
      e.code === 'CASCADE_ERR_STORE_UNAVAILABLE' ||
      e.code === 'CASCADE_ERR_CONTROLLER_UNAVAILABLE' ||
      e.code === 'CASCADE_ERR_MEDIA_WORKER_DIED' ||
      e.code === 'CASCADE_ERR_INTERNAL'
    ) {
      Cls = ConnectionError;
    }
  }
  if (!Cls || e.constructor === Cls) return e;
  const typed = new Cls(e.code, undefined, { cause: e });
  typed.message = (e as Error).message;
  return typed;
}

/** Whether trying again (elsewhere, later) can help. */
export function isRetryable(err: CascadeError): boolean {
  return err instanceof ConnectionError || err instanceof CapacityError;
}
