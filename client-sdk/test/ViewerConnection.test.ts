import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { Device } from 'mediasoup-client';
// Not in the package's exports: mediasoup-client's own test double (a handler without WebRTC) and its parameters.
import { FakeHandler } from '../../node_modules/mediasoup-client/lib/handlers/FakeHandler.js';
import * as fakeParameters from '../../node_modules/mediasoup-client/lib/test/fakeParameters.js';
import type { DeviceCache } from '../src/DeviceCache.js';
import { ViewerConnection, type ViewerConnectionOptions } from '../src/ViewerConnection.js';

type Listener = (ev: Record<string, unknown>) => void;
type Msg = { id?: number; type: string; data: unknown };
type NodeSocket = { reply: (data: unknown) => void; fail: (code: string) => void; notify: (type: string, data: unknown) => void };

/** A node behind a WebSocket double: `handle` answers each request (or leaves it to `later`). */
function fakeNode(handle: (msg: Msg, socket: NodeSocket) => void) {
  class FakeWs {
    readyState = 0;
    url: string;
    #listeners = new Map<string, Listener[]>();
    constructor(url: string) {
      this.url = url;
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
      const msg = JSON.parse(text) as Msg;
      // Each message its own task, as off a real socket.
      const out = (o: unknown) => setTimeout(() => this.emit('message', { data: JSON.stringify(o) }), 0);
      handle(msg, {
        reply: (data) => out({ v: 1, id: msg.id, ok: true, data }),
        fail: (code) => out({ v: 1, id: msg.id, ok: false, error: { code, message: code } }),
        notify: (type, data) => out({ v: 1, type, data }),
      });
    }
    close(code = 1000, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      queueMicrotask(() => this.emit('close', { code, reason }));
    }
  }
  return FakeWs as unknown as new (url: string) => WebSocket;
}

/**
 * A device on mediasoup-client's FakeHandler whose recv transports connect `connectAfterMs` after
 * their transport.connect request left (the handshake's time), as a real one's media path does.
 */
async function fakeDevice(connectAfterMs: number) {
  const base = FakeHandler.createFactory(fakeParameters);
  const handlers: FakeHandler[] = [];
  const device = new Device({ handlerFactory: { ...base, factory: (o: never) => handlers[handlers.push(base.factory(o) as FakeHandler) - 1]! } as never });
  await device.load({ routerRtpCapabilities: fakeParameters.generateRouterRtpCapabilities() });
  const connectLater = () => setTimeout(() => handlers.at(-1)?.setConnectionState('connected'), connectAfterMs);
  return { devices: { get: async () => device } as unknown as DeviceCache, connectLater };
}

const transportInfo = () => {
  const t = fakeParameters.generateTransportRemoteParameters();
  return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters };
};
const watchAnswer = () => ({ action: 'serve', nodeId: 'relay-1', rtpCapabilities: fakeParameters.generateRouterRtpCapabilities(), iceServers: [], stream: { id: 'k3v9d2xq7m', title: 't', state: 'live', createdAt: 1 } });

const consumerInfo = (kind: 'audio' | 'video') => {
  const p = fakeParameters.generateConsumerRemoteParameters({ codecMimeType: kind === 'audio' ? 'audio/opus' : 'video/VP8' });
  return { id: randomUUID(), producerId: randomUUID(), kind, rtpParameters: p.rtpParameters };
};

/**
 * A node that serves the join (watch, transport, connect; the transport connects `connectAfterMs`
 * after its connect request) and leaves every other request to `rest`.
 */
async function joiningNode(connectAfterMs: number, rest: (msg: Msg, node: NodeSocket) => void) {
  const { devices, connectLater } = await fakeDevice(connectAfterMs);
  const WebSocket = fakeNode((msg, node) => {
    if (msg.type === 'stream.watch') return node.reply(watchAnswer());
    if (msg.type === 'transport.create') return node.reply(transportInfo());
    if (msg.type !== 'transport.connect') return rest(msg, node);
    connectLater();
    node.reply({});
  });
  const open = (extra: Partial<ViewerConnectionOptions> = {}) =>
    ViewerConnection.open({ entryUrl: 'http://origin.test', streamId: 'k3v9d2xq7m', exclude: [], WebSocket, devices, timeoutMs: 5000, keepAlive: false, quality: 'auto', ...extra });
  return { open };
}

describe('ViewerConnection', () => {
  it("consumers announced while the subscription was on its way come after the subscription's own (a source replaced just then is shown, not the one it replaced)", async () => {
    const audio = consumerInfo('audio');
    const replaced = consumerInfo('video');
    const replacement = consumerInfo('video');
    const { open } = await joiningNode(10, (msg, node) => {
      if (msg.type === 'stream.subscribe') {
        // The node made these, then its video source was replaced: the new consumer is announced
        // right behind the answer.
        node.reply({ consumers: [audio, replaced] });
        return node.notify('consumer.new', replacement);
      }
      // Each resume takes the node a moment (a worker round trip).
      if (msg.type === 'consumer.resume') return void setTimeout(() => node.reply({}), 5);
      node.reply({});
    });
    const conn = await open();
    await new Promise((r) => setTimeout(r, 100));
    // Set up in the order the node made them: the subscription's, then the replacement (the last
    // video consumer is the one a page shows).
    expect(conn.consumers.map((c) => c.id)).toEqual([audio.id, replaced.id, replacement.id]);
    conn.close();
  });

  it('hands each consumer over before its resume (a caller reading RTP itself has the track before its first packet)', async () => {
    const audio = consumerInfo('audio');
    const video = consumerInfo('video');
    const log: string[] = [];
    const { open } = await joiningNode(10, (msg, node) => {
      if (msg.type === 'stream.subscribe') return node.reply({ consumers: [audio, video] });
      if (msg.type === 'consumer.resume') log.push(`resumed ${(msg.data as { consumerId: string }).consumerId === video.id ? 'video' : 'audio'}`);
      node.reply({});
    });
    const conn = await open({ onConsumer: (c) => log.push(`handed ${c.kind}`) });
    expect(log).toEqual(['handed audio', 'resumed audio', 'handed video', 'resumed video']);
    expect(conn.consumers.map((c) => c.kind)).toEqual(['audio', 'video']);
    conn.close();
  });
});
