import { setTimeout as delay } from 'node:timers/promises';
import { Type } from '@sinclair/typebox';
import { describe, expect, it, vi } from 'vitest';
import { Peer, channelPair } from '../src/index.js';

const defs = { 'echo.say': { params: Type.Object({ text: Type.String() }), result: Type.Object({ text: Type.String() }) } };

describe('channelPair()', () => {
  it('delivers messages in order, asynchronously, to the other end only', async () => {
    const [a, b] = channelPair();
    const atA = vi.fn();
    const atB: unknown[] = [];
    a.onMessage(atA);
    b.onMessage((data) => atB.push(data));
    a.send('1');
    a.send('2');
    expect(atB).toEqual([]); // not inside the sender's call
    await new Promise((r) => setImmediate(r));
    expect(atB).toEqual(['1', '2']);
    expect(atA).not.toHaveBeenCalled();
  });

  it('close() on one end closes both once, after the messages sent before it', async () => {
    const [a, b] = channelPair();
    const events: string[] = [];
    b.onMessage((data) => events.push(`msg ${String(data)}`));
    a.onClose((code, reason) => events.push(`a closed ${code} ${reason}`));
    b.onClose((code, reason) => events.push(`b closed ${code} ${reason}`));
    a.send('last');
    a.close(4000, 'bye');
    a.close(4001, 'again');
    b.close(4002, 'late');
    a.send('dropped');
    await delay(5);
    expect(events.filter((e) => !e.startsWith('a '))).toEqual(['msg last', 'b closed 4000 bye']);
    expect(events.filter((e) => e.startsWith('a '))).toEqual(['a closed 4000 bye']);
    expect(a.readyState).toBe(3);
    expect(b.readyState).toBe(3);
  });

  it('carries a Peer conversation like a WebSocket does', async () => {
    const [a, b] = channelPair();
    const server = new Peer({ channel: a, inbound: defs, outbound: {}, notifications: {} });
    const client = new Peer({ channel: b, inbound: {}, outbound: defs, notifications: {} });
    server.handle('echo.say', ({ text }) => ({ text: text.toUpperCase() }));
    await expect(client.request('echo.say', { text: 'hi' })).resolves.toEqual({ text: 'HI' });
    const closed = new Promise((r) => server.once('close', (code) => r(code)));
    client.close(1000, 'done');
    expect(await closed).toBe(1000);
  });
});
