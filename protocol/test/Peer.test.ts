import { Type } from '@sinclair/typebox';
import { describe, expect, it, vi } from 'vitest';
import { CascadeError, ManualChannel, Peer, type MessageChannel } from '../src/index.js';

/** Two Peers wired back to back through fake sockets. */
function pair(options: { rateLimitPerSec?: number; maxMessageBytes?: number } = {}) {
  const defs = {
    'echo.say': { params: Type.Object({ text: Type.String({ maxLength: 10 }) }), result: Type.Object({ text: Type.String() }) },
    'fail.now': { params: Type.Object({}), result: Type.Object({}) },
  };
  const notes = { 'note.tell': Type.Object({ n: Type.Integer() }) };
  const sent: { server: string[]; client: string[] } = { server: [], client: [] };
  let server!: Peer<typeof defs, Record<string, never>, Record<string, never>>;
  let client!: Peer<Record<string, never>, typeof defs, typeof notes>;
  const sock = (side: 'server' | 'client'): MessageChannel & { closedWith?: [number, string] } => {
    const s: ManualChannel & { closedWith?: [number, string] } = new ManualChannel(
      (data) => {
        sent[side].push(data);
        queueMicrotask(() => (side === 'server' ? client : server).receive(data));
      },
      (code, reason) => {
        s.closedWith = [code, reason];
      },
    );
    return s;
  };
  const serverSock = sock('server');
  server = new Peer({ channel: serverSock, inbound: defs, outbound: {}, notifications: {}, ...options });
  client = new Peer({ channel: sock('client'), inbound: {}, outbound: defs, notifications: notes, requestTimeoutMs: 500 });
  return { server, client, sent, serverSock };
}

describe('Peer', () => {
  it('request() resolves with the handler result', async () => {
    const { server, client } = pair();
    server.handle('echo.say', ({ text }) => ({ text: text.toUpperCase() }));
    await expect(client.request('echo.say', { text: 'hi' })).resolves.toEqual({ text: 'HI' });
  });

  it('invalid params are refused with CASCADE_ERR_PROTOCOL_INVALID_PARAMS and reported', async () => {
    const { server, client } = pair();
    const handler = vi.fn(() => ({ text: '' }));
    const onError = vi.fn();
    server.handle('echo.say', handler).on('protocolerror', onError);
    await expect(client.request('echo.say', { text: 'far too long a text' })).rejects.toMatchObject({ code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' });
    expect(handler).not.toHaveBeenCalled();
    expect(onError).toHaveBeenCalledTimes(1);
  });

  it('a throwing handler answers with its code and never a stack', async () => {
    const { server, client, sent } = pair();
    server.handle('fail.now', () => {
      throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', 'xyz');
    });
    await expect(client.request('fail.now', {})).rejects.toMatchObject({ code: 'CASCADE_ERR_STREAM_NOT_FOUND' });
    server.handle('fail.now', () => {
      throw new Error('secret internals');
    });
    await expect(client.request('fail.now', {})).rejects.toMatchObject({ code: 'CASCADE_ERR_INTERNAL' });
    expect(sent.server.join('\n')).not.toContain('secret internals');
    expect(sent.server.join('\n')).not.toContain('at ');
  });

  it('unknown request types get CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE', async () => {
    const { server, sent } = pair();
    server.receive(JSON.stringify({ v: 1, id: 9, type: 'nope.nope', data: {} }));
    expect(JSON.parse(sent.server[0]!)).toMatchObject({ id: 9, ok: false, error: { code: 'CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE' } });
  });

  it('malformed frames get a reply with id null and the peer stays open', async () => {
    const { server, sent } = pair();
    server.receive('{{{');
    server.receive(Buffer.from('binary') as unknown as string);
    expect(sent.server.map((s) => JSON.parse(s).error.code)).toEqual(['CASCADE_ERR_PROTOCOL_MALFORMED', 'CASCADE_ERR_PROTOCOL_MALFORMED']);
    expect(server.closed).toBe(false);
  });

  it('an oversized frame is answered and the connection closed with 4413', () => {
    const { server, sent, serverSock } = pair({ maxMessageBytes: 100 });
    server.receive(JSON.stringify({ v: 1, id: 1, type: 'echo.say', data: { text: 'x'.repeat(200) } }));
    expect(JSON.parse(sent.server[0]!).error.code).toBe('CASCADE_ERR_PROTOCOL_TOO_LARGE');
    expect(serverSock.closedWith).toEqual([4413, 'CASCADE_ERR_PROTOCOL_TOO_LARGE']);
    expect(server.closed).toBe(true);
  });

  it('a flood beyond the rate limit closes the connection with 4429', () => {
    const { server, serverSock } = pair({ rateLimitPerSec: 5 });
    for (let i = 0; i < 50; i++) server.receive(JSON.stringify({ v: 1, id: i, type: 'nope.nope' }));
    expect(serverSock.closedWith?.[0]).toBe(4429);
  });

  it('pending requests reject with CASCADE_ERR_CLIENT_CONNECTION when the socket closes', async () => {
    const { client } = pair();
    const p = client.request('echo.say', { text: 'a' }); // nobody handles it: no answer will come
    client.socketClosed(1006, '');
    await expect(p).rejects.toMatchObject({ code: 'CASCADE_ERR_CLIENT_CONNECTION' });
  });

  it('a request without answer rejects with CASCADE_ERR_CLIENT_TIMEOUT', async () => {
    const { client, server } = pair();
    server.handle('echo.say', () => new Promise(() => {}));
    await expect(client.request('echo.say', { text: 'a' }, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'CASCADE_ERR_CLIENT_TIMEOUT' });
  });

  it('valid notifications are emitted, invalid ones answered with an error', async () => {
    const { client, sent } = pair();
    const seen = vi.fn();
    client.on('notification', seen);
    client.receive(JSON.stringify({ v: 1, type: 'note.tell', data: { n: 1 } }));
    client.receive(JSON.stringify({ v: 1, type: 'note.tell', data: { n: 'x' } }));
    expect(seen).toHaveBeenCalledTimes(1);
    expect(JSON.parse(sent.client[0]!).error.code).toBe('CASCADE_ERR_PROTOCOL_INVALID_PARAMS');
  });

  it('close() is idempotent and emits close once', () => {
    const { server } = pair();
    const onClose = vi.fn();
    server.on('close', onClose);
    server.close();
    server.close();
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('onNotification() hands one type its validated data, until stopped', async () => {
    const { client } = pair();
    const seen: number[] = [];
    const stop = client.onNotification('note.tell', ({ n }) => seen.push(n));
    client.receive(JSON.stringify({ v: 1, type: 'note.tell', data: { n: 1 } }));
    client.receive(JSON.stringify({ v: 1, type: 'note.tell', data: { n: 'x' } }));
    stop();
    client.receive(JSON.stringify({ v: 1, type: 'note.tell', data: { n: 2 } }));
    expect(seen).toEqual([1]);
  });

  it('an error reply with a code this end does not know rejects with INTERNAL, keeping its message', async () => {
    const { server, client } = pair();
    server.handle('echo.say', () => new Promise(() => {}));
    const answer = client.request('echo.say', { text: 'hi' });
    client.receive(JSON.stringify({ v: 1, id: 1, ok: false, error: { code: 'CASCADE_ERR_FROM_THE_FUTURE', message: 'later' } }));
    await expect(answer).rejects.toMatchObject({ code: 'CASCADE_ERR_INTERNAL', message: 'later' });
  });
});
