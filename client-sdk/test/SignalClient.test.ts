import { describe, expect, it } from 'vitest';
import { ConnectionError, ProtocolError, StreamNotFoundError } from '../src/errors.js';
import { SignalClient } from '../src/SignalClient.js';

type Listener = (ev: Record<string, unknown>) => void;

/** A WebSocket double: what the client sends is answered by `server(msg)`. */
function fakeSocket(server: (msg: { id: number; type: string; data: unknown }, reply: (o: unknown) => void) => void) {
  const sockets: FakeWs[] = [];
  class FakeWs {
    readyState = 0;
    url: string;
    #listeners = new Map<string, Listener[]>();
    constructor(url: string) {
      this.url = url;
      sockets.push(this);
      queueMicrotask(() => {
        this.readyState = 1;
        this.emit('open', {});
      });
    }
    addEventListener(type: string, l: Listener) {
      this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), l]);
    }
    removeEventListener(type: string, l: Listener) {
      this.#listeners.set(type, (this.#listeners.get(type) ?? []).filter((x) => x !== l));
    }
    emit(type: string, ev: Record<string, unknown>) {
      for (const l of this.#listeners.get(type) ?? []) l(ev);
    }
    send(text: string) {
      server(JSON.parse(text), (o) => queueMicrotask(() => this.emit('message', { data: JSON.stringify(o) })));
    }
    close(code = 1000, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      queueMicrotask(() => this.emit('close', { code, reason }));
    }
  }
  return { WebSocket: FakeWs as unknown as new (url: string) => WebSocket, sockets };
}

describe('SignalClient', () => {
  it('connects to /ws with the protocol version and resolves validated results', async () => {
    const { WebSocket, sockets } = fakeSocket((m, reply) => reply({ v: 1, id: m.id, ok: true, data: { id: 't1', iceParameters: {}, iceCandidates: [], dtlsParameters: { fingerprints: [{ algorithm: 'sha-256', value: 'AA' }] } } }));
    const c = await SignalClient.connect('https://live.example.org/some/page', { WebSocket });
    expect(sockets[0]!.url).toBe('wss://live.example.org/ws?v=1');
    await expect(c.request('transport.create', { direction: 'recv' })).resolves.toMatchObject({ id: 't1' });
  });

  it('turns error replies into typed errors', async () => {
    const { WebSocket } = fakeSocket((m, reply) => reply({ v: 1, id: m.id, ok: false, error: { code: 'CASCADE_ERR_STREAM_NOT_FOUND', message: 'stream not found: x' } }));
    const c = await SignalClient.connect('http://h:1', { WebSocket });
    await expect(c.request('stream.watch', { streamId: 'xyz' })).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it('rejects a reply that does not match the protocol', async () => {
    const { WebSocket } = fakeSocket((m, reply) => reply({ v: 1, id: m.id, ok: true, data: { nonsense: true } }));
    const c = await SignalClient.connect('http://h:1', { WebSocket });
    await expect(c.request('stream.watch', { streamId: 'xyz' })).rejects.toBeInstanceOf(ProtocolError);
  });

  it('delivers known notifications and skips unknown ones', async () => {
    const { WebSocket, sockets } = fakeSocket(() => {});
    const c = await SignalClient.connect('http://h:1', { WebSocket });
    const seen: unknown[] = [];
    c.onNotification('stream.state', (d) => seen.push(d));
    sockets[0]!.emit('message', { data: JSON.stringify({ v: 1, type: 'stream.state', data: { streamId: 'abc', state: 'ended' } }) });
    sockets[0]!.emit('message', { data: JSON.stringify({ v: 1, type: 'future.thing', data: {} }) });
    expect(seen).toEqual([{ streamId: 'abc', state: 'ended' }]);
  });

  it('fails pending requests with ConnectionError when the socket closes', async () => {
    const { WebSocket, sockets } = fakeSocket(() => {});
    const c = await SignalClient.connect('http://h:1', { WebSocket });
    const p = c.request('stream.watch', { streamId: 'xyz' });
    sockets[0]!.close(1006, '');
    await expect(p).rejects.toBeInstanceOf(ConnectionError);
    expect(c.closed).toBe(true);
  });
});
