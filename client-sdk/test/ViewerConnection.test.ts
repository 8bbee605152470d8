import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { Device } from 'mediasoup-client';
// Not in the package's exports: mediasoup-client's own test double (a handler without WebRTC) and its parameters.
import { FakeHandler } from '../../node_modules/mediasoup-client/lib/handlers/FakeHandler.js';
import * as fakeParameters from '../../node_modules/mediasoup-client/lib/test/fakeParameters.js';
import type { DeviceCache } from '../src/DeviceCache.js';
import { ViewerConnection } from '../src/ViewerConnection.js';

type Listener = (ev: Record<string, unknown>) => void;
type Msg = { id?: number; type: string; data: unknown };

/** A node behind a WebSocket double: `handle` answers each request (or leaves it to `later`). */
function fakeNode(handle: (msg: Msg, socket: { reply: (data: unknown) => void; fail: (code: string) => void; notify: (type: string, data: unknown) => void }) => void) {
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

const consumerInfo = (kind: 'audio' | 'video') => {
  const p = fakeParameters.generateConsumerRemoteParameters({ codecMimeType: kind === 'audio' ? 'audio/opus' : 'video/VP8' });
  return { id: randomUUID(), producerId: randomUUID(), kind, rtpParameters: p.rtpParameters };
};

describe('ViewerConnection', () => {
  it("consumers announced while the subscription was on its way come after the subscription's own (a source replaced just then is shown, not the one it replaced)", async () => {
    const audio = consumerInfo('audio');
    const replaced = consumerInfo('video');
    const replacement = consumerInfo('video');
    const WebSocket = fakeNode((msg, node) => {
      switch (msg.type) {
        case 'stream.watch':
          return node.reply({ action: 'serve', nodeId: 'relay-1', rtpCapabilities: fakeParameters.generateRouterRtpCapabilities(), iceServers: [], stream: { id: 'k3v9d2xq7m', title: 't', state: 'live', createdAt: 1 } });
        case 'transport.create': {
          const t = fakeParameters.generateTransportRemoteParameters();
          return node.reply({ id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters });
        }
        case 'stream.subscribe':
          // The node made these, then its video source was replaced: the new consumer is announced
          // right behind the answer.
          node.reply({ consumers: [audio, replaced] });
          return node.notify('consumer.new', replacement);
        case 'consumer.resume':
          // Each resume takes the node a moment (a worker round trip).
          return void setTimeout(() => node.reply({}), 5);
        default:
          return node.reply({});
      }
    });
    const device = new Device({ handlerFactory: FakeHandler.createFactory(fakeParameters) });
    await device.load({ routerRtpCapabilities: fakeParameters.generateRouterRtpCapabilities() });
    const devices = { get: async () => device } as unknown as DeviceCache;
    const conn = await ViewerConnection.open({ entryUrl: 'http://origin.test', streamId: 'k3v9d2xq7m', exclude: [], WebSocket, devices, timeoutMs: 5000, keepAlive: false, quality: 'auto' });
    await new Promise((r) => setTimeout(r, 100));
    // Set up in the order the node made them: the subscription's, then the replacement (the last
    // video consumer is the one a page shows).
    expect(conn.consumers.map((c) => c.id)).toEqual([audio.id, replaced.id, replacement.id]);
    conn.close();
  });
});
