import { Type } from '@sinclair/typebox';
import { describe, expect, it, vi } from 'vitest';
import { Peer, attachWebSocket } from '../src/index.js';
import { createChannelPair } from '../src/node/index.js';

const defs = { 'echo.say': { params: Type.Object({ text: Type.String() }), result: Type.Object({ text: Type.String() }) } };

describe('createChannelPair()', () => {
  it('delivers messages in order, asynchronously, to the other end only', async () => {
    const [a, b] = createChannelPair();
    const atA = vi.fn();
    const atB: unknown[] = [];
    a.addEventListener('message', atA);
    b.addEventListener('message', (ev) => atB.push(ev.data));
    a.send('1');
    a.send('2');
    expect(atB).toEqual([]); // not inside the sender's call
    await new Promise((r) => setImmediate(r));
    expect(atB).toEqual(['1', '2']);
    expect(atA).not.toHaveBeenCalled();
  });

  it('close() on one end closes both once, after the messages sent before it', async () => {
    const [a, b] = createChannelPair();
    const events: string[] = [];
    b.addEventListener('message', (ev) => events.push(`msg ${String(ev.data)}`));
    a.addEventListener('close', (ev) => events.push(`a closed ${ev.code} ${ev.reason}`));
    b.addEventListener('close', (ev) => events.push(`b closed ${ev.code} ${ev.reason}`));
    a.send('last');
    a.close(4000, 'bye');
    a.close(4001, 'again');
    b.close(4002, 'late');
    a.send('dropped');
    await new Promise((r) => setTimeout(r, 5));
    expect(events.filter((e) => !e.startsWith('a '))).toEqual(['msg last', 'b closed 4000 bye']);
    expect(events.filter((e) => e.startsWith('a '))).toEqual(['a closed 4000 bye']);
    expect(a.readyState).toBe(3);
    expect(b.readyState).toBe(3);
  });

  it('carries a Peer conversation like a WebSocket does', async () => {
    const [a, b] = createChannelPair();
    const server = new Peer({ socket: a, inbound: defs, outbound: {}, notifications: {} });
    const client = new Peer({ socket: b, inbound: {}, outbound: defs, notifications: {} });
    attachWebSocket(server, a);
    attachWebSocket(client, b);
    server.handle('echo.say', ({ text }) => ({ text: text.toUpperCase() }));
    await expect(client.request('echo.say', { text: 'hi' })).resolves.toEqual({ text: 'HI' });
    const closed = new Promise((r) => server.once('close', (code) => r(code)));
    client.close(1000, 'done');
    expect(await closed).toBe(1000);
  });
});
