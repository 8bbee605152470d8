import { setTimeout as delay } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import WebSocket from 'ws';
import { bindingSuccess } from '@cascade/controller';
import { PROBE_PREFIX, signallingUrl } from '@cascade/protocol';
import { runUploadTest } from '@cascade/sfu';
import { waitFor } from './wait.js';

export interface RawReply {
  id: number | string | null;
  ok: boolean;
  data?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/**
 * A bare protocol client for hostile-input tests: sends whatever it is given and records
 * everything the server answers, so a test can check codes and close frames exactly.
 */
export class RawClient {
  readonly ws: WebSocket;
  readonly messages: Record<string, unknown>[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #nextId = 1;

  /** `localAddress`: the client address to connect from (any of 127.0.0.0/8 works on loopback). */
  static open(base: string, path = '/ws', query?: string, options: { localAddress?: string } = {}): Promise<RawClient> {
    const url = query === undefined ? signallingUrl(base, path) : `${base.replace(/^http/, 'ws')}${path}${query}`;
    const c = new RawClient(new WebSocket(url, options.localAddress ? { localAddress: options.localAddress } : {}));
    return new Promise((resolve, reject) => {
      c.ws.once('open', () => resolve(c));
      c.ws.once('error', reject);
      c.ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(body || '{}') })));
      });
    });
  }

  readonly #handlers = new Map<string, (data: never) => Promise<unknown>>();
  readonly #listeners = new Map<string, (data: never) => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (d) => {
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(d.toString()) as Record<string, unknown>;
      } catch {
        this.messages.push({ raw: d.toString() });
        return;
      }
      if (typeof m.type === 'string' && m.id === undefined) this.#listeners.get(m.type)?.(m.data as never);
      const handler = typeof m.type === 'string' && m.id !== undefined ? this.#handlers.get(m.type) : undefined;
      if (!handler) {
        this.messages.push(m);
        return;
      }
      void handler(m.data as never).then(
        (data) => this.ws.readyState === WebSocket.OPEN && this.ws.send(JSON.stringify({ v: 1, id: m.id, ok: true, data })),
        (err: Error) => this.ws.readyState === WebSocket.OPEN && this.ws.send(JSON.stringify({ v: 1, id: m.id, ok: false, error: { code: 'CASCADE_ERR_INTERNAL', message: err.message } })),
      );
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {});
  }

  /** Answer the requests of `type` the server sends (the rest are recorded in `messages`). */
  onRequest<T>(type: string, handler: (data: T) => Promise<unknown>): void {
    this.#handlers.set(type, handler as (data: never) => Promise<unknown>);
  }

  /** Call `listener` with each notification of `type` (they are recorded in `messages` too). */
  onNotification<T>(type: string, listener: (data: T) => void): void {
    this.#listeners.set(type, listener as (data: never) => void);
  }

  send(raw: string | Buffer): void {
    this.ws.send(raw);
  }

  /** Send a request and wait for the reply with its id. */
  async request(type: string, data: unknown = {}, timeoutMs = 10_000): Promise<RawReply> {
    const id = this.#nextId++;
    this.ws.send(JSON.stringify({ v: 1, id, type, data }));
    return this.reply(id, timeoutMs);
  }

  /**
   * Send `count` requests in one burst (no await in between, as an attacker's script would),
   * then wait for every reply: `data` may differ per request.
   */
  burst(type: string, data: unknown | ((i: number) => unknown), count: number, timeoutMs = 20_000): Promise<RawReply[]> {
    const at = (i: number) => (typeof data === 'function' ? (data as (i: number) => unknown)(i) : data);
    return this.burstOf(Array.from({ length: count }, (_, i) => [type, at(i)] as [string, unknown]), timeoutMs);
  }

  /** Send these requests in one burst, in this order, and wait for every reply (in the same order). */
  async burstOf(requests: [type: string, data: unknown][], timeoutMs = 20_000): Promise<RawReply[]> {
    const ids: number[] = [];
    // One TCP write for all the frames, so that the server reads them together: the tightest burst.
    const socket = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    socket?.cork();
    for (const [type, data] of requests) {
      const id = this.#nextId++;
      ids.push(id);
      this.ws.send(JSON.stringify({ v: 1, id, type, data }));
    }
    socket?.uncork();
    return Promise.all(ids.map((id) => this.reply(id, timeoutMs)));
  }

  async reply(id: number | string | null, timeoutMs = 10_000): Promise<RawReply> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = this.messages.find((x) => 'ok' in x && x.id === id);
      if (m) {
        this.messages.splice(this.messages.indexOf(m), 1);
        return m as unknown as RawReply;
      }
      if (this.ws.readyState === WebSocket.CLOSED) break;
      await delay(10);
    }
    throw new Error(`no reply to ${id}`);
  }

  notifications(type: string): Record<string, unknown>[] {
    return this.messages.filter((m) => m.type === type);
  }

  close(): void {
    this.ws.close();
  }

  /** How the server closed the connection, or `undefined` if it is still open after `ms` (a ceiling, not a measure). */
  closedWithin(ms: number): Promise<{ code: number; reason: string } | undefined> {
    return Promise.race([this.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
  }
}

/** RTP parameters a browser would send for VP8 (enough for mediasoup to create a producer). */
export function vp8RtpParameters(ssrc = 11111111): Record<string, unknown> {
  return {
    mid: '0',
    codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }],
    headerExtensions: [],
    encodings: [{ ssrc }],
    rtcp: { cname: 'test', reducedSize: true },
  };
}

/** A DTLS fingerprint-shaped object (never verified: the transport is not connected by ICE). */
export function fakeDtlsParameters(): Record<string, unknown> {
  return { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: Array.from({ length: 32 }, () => 'AB').join(':') }] };
}

/** SRTP parameters a child relay offers in pipe.open (the key need not be real for the pipe to open). */
export function fakeSrtpParameters(): Record<string, unknown> {
  return { cryptoSuite: 'AEAD_AES_256_GCM', keyBase64: Buffer.alloc(44, 7).toString('base64') };
}

export interface RawRelay {
  /** The /control connection. */
  c: RawClient;
  /** The socket the controller's pipe-port probe reaches (it is echoed back over `c`). */
  udp: dgram.Socket;
  /** The stand-in media port: answers the controller's STUN check as a mediasoup WebRTC server would. */
  media: dgram.Socket;
  /** What was announced (without an id unless one was asked for). */
  node: Record<string, unknown>;
  /** The node.register reply. */
  reg: RawReply;
  close(): void;
}

/**
 * A relay speaking raw protocol to a controller's /control: it registers with `token` and, unless
 * told not to, passes the reachability checks (a STUN answer on its stand-in media port, the
 * pipe-port nonce echoed, the upload test run) so the controller marks it ready.
 */
export async function openRawRelay(
  baseUrl: string,
  o: { token: string; id?: string; streams?: unknown[]; answerProbe?: boolean; capacity?: Record<string, number>; mediaIp?: string; tunnels?: unknown[] },
): Promise<RawRelay> {
  const bind = async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return s;
  };
  const udp = await bind();
  const media = await bind();
  const answer = o.answerProbe !== false;
  const pwd = randomBytes(18).toString('base64url');
  const ufrag = randomBytes(6).toString('hex');
  media.on('message', (m, rinfo) => {
    const reply = answer ? bindingSuccess(m, pwd, rinfo) : undefined;
    if (reply) media.send(reply, rinfo.port, rinfo.address);
  });
  let nonce: string | undefined;
  udp.on('message', (m) => (nonce = m.toString().replace(PROBE_PREFIX, '')));
  const c = await RawClient.open(baseUrl, '/control');
  // The controller measures our upload before it admits us.
  c.onRequest('node.uploadTest', async (p: { nonce: string; kbps: number; durationMs: number }) => ({ sentBytes: await runUploadTest(baseUrl, { ...p, timeoutMs: 5000 }) }));
  const capacity = o.capacity ?? { maxViewers: 10, maxChildren: 2, upKbps: 10_000, downKbps: 10_000 };
  const node = {
    ...(o.id ? { id: o.id } : {}),
    mediaIp: o.mediaIp ?? '127.0.0.1',
    mediaPort: media.address().port,
    probe: { ufrag, pwd },
    probePort: udp.address().port,
    capacity,
  };
  const reg = await c.request('node.register', { token: o.token, node, streams: o.streams ?? [], ...(o.tunnels ? { tunnels: o.tunnels } : {}) });
  if (reg.ok && answer) {
    await waitFor(() => nonce, { what: 'the UDP probe' });
    const ack = await c.request('node.probeAck', { nonce });
    if (!ack.ok) throw new Error(`probe acknowledgement refused: ${JSON.stringify(ack.error)}`);
    await waitFor(() => c.notifications('node.ready').length > 0, { what: 'node.ready', timeoutMs: 15_000 });
  }
  return {
    c,
    udp,
    media,
    node,
    reg,
    close: () => {
      c.close();
      udp.close();
      media.close();
    },
  };
}
