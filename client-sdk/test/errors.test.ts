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
});
