import { describe, expect, it } from 'vitest';
import { CascadeError, EnvelopeError, parseEnvelope, PROTOCOL_VERSION, utf8Length } from '../src/index.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as CascadeError).code;
  }
  return 'no error';
};

describe('parseEnvelope()', () => {
  it('parses a request, a notification and both kinds of response', () => {
    expect(parseEnvelope(JSON.stringify({ v: 1, id: 3, type: 'stream.watch', data: { streamId: 'abc' } }))).toEqual({
      kind: 'request',
      id: 3,
      type: 'stream.watch',
      data: { streamId: 'abc' },
    });
    expect(parseEnvelope(JSON.stringify({ v: 1, type: 'stream.state', data: {} })).kind).toBe('notification');
    expect(parseEnvelope(JSON.stringify({ v: 1, id: 3, ok: true, data: { a: 1 } }))).toMatchObject({ kind: 'response', ok: true });
    expect(
      parseEnvelope(JSON.stringify({ v: 1, id: null, ok: false, error: { code: 'CASCADE_ERR_INTERNAL', message: 'x' } })),
    ).toMatchObject({ kind: 'response', ok: false, id: null });
  });

  it('rejects what is not a JSON object with CASCADE_ERR_PROTOCOL_MALFORMED', () => {
    for (const raw of ['not json', '[]', '42', 'null', '"s"']) expect(code(() => parseEnvelope(raw))).toBe('CASCADE_ERR_PROTOCOL_MALFORMED');
  });

  it('rejects a missing or wrong version, type or id', () => {
    expect(code(() => parseEnvelope(JSON.stringify({ id: 1, type: 'a.b' })))).toBe('CASCADE_ERR_PROTOCOL_MALFORMED');
    expect(code(() => parseEnvelope(JSON.stringify({ v: PROTOCOL_VERSION + 1, id: 1, type: 'a.b' })))).toBe('CASCADE_ERR_PROTOCOL_MALFORMED');
    expect(code(() => parseEnvelope(JSON.stringify({ v: 1, id: 1, type: 'nodots' })))).toBe('CASCADE_ERR_PROTOCOL_MALFORMED');
    expect(code(() => parseEnvelope(JSON.stringify({ v: 1, id: -1, type: 'a.b' })))).toBe('CASCADE_ERR_PROTOCOL_MALFORMED');
    expect(code(() => parseEnvelope(JSON.stringify({ v: 1, id: { x: 1 }, type: 'a.b' })))).toBe('CASCADE_ERR_PROTOCOL_MALFORMED');
  });

  it('keeps the request id on a malformed request so the reply can echo it', () => {
    try {
      parseEnvelope(JSON.stringify({ v: 1, id: 7, type: 'BAD TYPE' }));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(EnvelopeError);
      expect(err instanceof EnvelopeError && err.requestId).toBe(7);
    }
  });

  it('rejects a message over the limit with CASCADE_ERR_PROTOCOL_TOO_LARGE, counting UTF-8 bytes', () => {
    const big = JSON.stringify({ v: 1, id: 1, type: 'a.b', data: { s: 'é'.repeat(600) } });
    expect(big.length).toBeLessThan(1024);
    expect(utf8Length(big)).toBeGreaterThan(1024);
    expect(code(() => parseEnvelope(big, 1024))).toBe('CASCADE_ERR_PROTOCOL_TOO_LARGE');
  });
});
