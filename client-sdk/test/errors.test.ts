import { describe, expect, it } from 'vitest';
import { CascadeError } from '@cascade/protocol';
import {
  AuthError,
  CapacityError,
  ConnectionError,
  ProtocolError,
  StreamEndedError,
  StreamNotFoundError,
  isRetryable,
  typedError,
} from '../src/errors.js';
import { closeError } from '../src/SignalClient.js';

describe('typedError()', () => {
  it('turns server codes into classes the reconnect logic branches on', () => {
    const cases: [string, unknown][] = [
      ['CASCADE_ERR_STREAM_NOT_FOUND', StreamNotFoundError],
      ['CASCADE_ERR_STREAM_ENDED', StreamEndedError],
      ['CASCADE_ERR_AUTH_EXPIRED_TOKEN', AuthError],
      ['CASCADE_ERR_PROTOCOL_INVALID_PARAMS', ProtocolError],
      ['CASCADE_ERR_NODE_CAPACITY', CapacityError],
      ['CASCADE_ERR_NODE_DRAINING', ConnectionError],
      ['CASCADE_ERR_MEDIA_WORKER_DIED', ConnectionError],
      ['CASCADE_ERR_STORE_UNAVAILABLE', ConnectionError],
    ];
    for (const [code, cls] of cases) {
      const e = typedError(new CascadeError(code as never, 'detail'));
      expect(e, code).toBeInstanceOf(cls as never);
      expect(e.code).toBe(code);
      expect(e.message).toContain('detail');
    }
  });

  it('retries connection and capacity problems, never auth or a missing stream', () => {
    expect(isRetryable(typedError(new CascadeError('CASCADE_ERR_CLIENT_CONNECTION')))).toBe(true);
    expect(isRetryable(typedError(new CascadeError('CASCADE_ERR_NODE_CAPACITY')))).toBe(true);
    expect(isRetryable(typedError(new CascadeError('CASCADE_ERR_AUTH_INVALID_TOKEN')))).toBe(false);
    expect(isRetryable(typedError(new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND')))).toBe(false);
  });

  it('reads a coded close frame, and treats other closes as a lost connection', () => {
    expect(closeError(4503, 'CASCADE_ERR_MEDIA_WORKER_DIED')).toMatchObject({ code: 'CASCADE_ERR_MEDIA_WORKER_DIED' });
    expect(closeError(4401, 'CASCADE_ERR_AUTH_INVALID_TOKEN')).toBeInstanceOf(AuthError);
    expect(closeError(1006, '')).toMatchObject({ code: 'CASCADE_ERR_CLIENT_CONNECTION' });
    expect(closeError(4400, 'CASCADE_ERR_NOT_A_REAL_CODE')).toMatchObject({ code: 'CASCADE_ERR_INTERNAL' });
  });

  it("a browser's own refusal (a SecurityError with a numeric code) is a typed, retryable error with a string code", () => {
    // What Chromium throws for an insecure ws:// from an https page: a DOMException, code 18.
    const refusal = Object.assign(new Error("Failed to construct 'WebSocket': An insecure WebSocket connection may not be initiated from a page loaded over HTTPS."), { name: 'SecurityError', code: 18 });
    const e = typedError(refusal);
    expect(e).toBeInstanceOf(ConnectionError);
    expect(e.code).toBe('CASCADE_ERR_CLIENT_BLOCKED');
    expect(typeof e.code).toBe('string');
    expect(isRetryable(e)).toBe(true);
    // Anything else foreign keeps a string code too.
    expect(typedError(Object.assign(new Error('x'), { code: 42 })).code).toBe('CASCADE_ERR_INTERNAL');
  });

  it('a node that is gone, or out of reach for now, is worth another try', () => {
    expect(isRetryable(typedError(new CascadeError('CASCADE_ERR_NODE_GONE')))).toBe(true);
    expect(isRetryable(typedError(new CascadeError('CASCADE_ERR_NODE_UNREACHABLE')))).toBe(true);
    expect(closeError(4502, 'CASCADE_ERR_NODE_GONE')).toBeInstanceOf(ConnectionError);
  });
});
