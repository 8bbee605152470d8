import type { Device, types as msc } from 'mediasoup-client';
import { TypedEmitter, type CascadeError, type ConsumerInfo, type IceServer, type NotificationData, type Quality, type StreamInfo, type StreamState } from '@cascade/protocol';
import { ConnectionError, typedError } from './errors.js';
import { closeError, SignalClient, type KeepAliveOptions, type WebSocketCtor } from './SignalClient.js';
import { IntegrityMonitor, type IntegrityOptions } from './integrity/IntegrityMonitor.js';
import type { IntegrityStatus } from './integrity/IntegrityVerifier.js';
import type { DeviceCache } from './DeviceCache.js';

/**
 * A media transport that has not connected this long after its first consumer failed (ms): a
 * handshake lost for good on a weak link (werift itself gives up only after 30 s) is a failed
 * connection, and the viewer goes elsewhere instead of waiting. Three DTLS retransmissions in a
 * row (1, 2 and 4 s) fit in it.
 */
const MEDIA_CONNECT_DEADLINE_MS = 8000;

/** A node slow to answer a ping while media came after it left: how long the media must then stop to call it frozen (ms). Audio alone brings a packet every 20 ms. */
const SLOW_RECHECK_MS = 120;
/**
 * No frame at all (audio comes every 20 ms, video every 33) for this long while the media transport
 * is up: the node is asked at once whether it is there (SignalClient.probe). Checked every
 * MEDIA_GAP_CHECK_MS, where frames are seen (IntegrityMonitor.lastMediaAt).
 */
const MEDIA_GAP_MS = 120;
const MEDIA_GAP_CHECK_MS = 40;

export interface ViewerConnectionOptions {
  /** The deployment's public endpoint: it serves the viewer, itself or through the node the controller picks. */
  entryUrl: string;
  streamId: string;
  token?: string;
  exclude: string[];
  WebSocket?: WebSocketCtor;
  /** Shared so that the device is loaded once across reconnections. */
  devices: DeviceCache;
  timeoutMs: number;
  keepAlive?: KeepAliveOptions | false;
  /** What to receive from the start (sent with the subscription). */
  quality: Quality;
  integrity?: IntegrityOptions;
  /** Each consumer as soon as it exists, before its media is resumed (and before open() resolves). */
  onConsumer?: (consumer: msc.Consumer) => void;
}

export type ViewerConnectionEvents = {
  consumer: [consumer: msc.Consumer];
  /** The node closed a consumer (its source went away, or the viewer chose audio only). */
  consumerclosed: [consumer: msc.Consumer];
  /** The layers a video consumer receives changed. */
  layers: [layers: NotificationData<'consumer.layers'>];
  streamstate: [state: StreamState];
  /** The node asked its viewers to move (it is draining). */
  draining: [];
  /** The node has not answered a ping for a while: it may have frozen or dropped off the network. */
  suspect: [];
  /**
   * The signalling connection dropped while media still flows (the public endpoint went away,
   * not the node serving the media): the media stays until the viewer has moved.
   */
  signallost: [error: CascadeError];
  /**
   * Pings go unanswered but media keeps arriving: the way our messages travel to the node is
   * broken (a frozen or restarting controller in between), not the node. Join again, keeping the media.
   */
  signalsilent: [];
  /** Whether the frames from this node verify against the origin's signed digests changed. */
  integrity: [status: IntegrityStatus];
  /** The picture stopped (see IntegrityMonitor); what was measured, for the report. */
  stalled: [detail: string];
  /** The highest simulcast layer the origin gets changed, as its signed batches say (see IntegrityMonitor). */
  originlayers: [top: number | undefined];
  /** The connection is gone (by error, or close()). */
  closed: [error: Error | undefined];
  listenererror: [event: string, error: unknown];
};

/**
 * What a Watch uses of its connection to a node (each join, move and reconnect makes one): a
 * ViewerConnection, or a test's fake driven without sockets or WebRTC.
 */
export interface WatchConnection {
  readonly nodeId: string;
  readonly stream: StreamInfo;
  readonly quality: Quality;
  readonly closed: boolean;
  readonly consumers: msc.Consumer[];
  readonly integrity: IntegrityStatus;
  report(state: 'tampered' | 'unverified' | 'stalled', code: string, detail?: string): void;
  close(): void;
  setQuality(quality: Quality): Promise<void>;
  on<K extends keyof ViewerConnectionEvents>(event: K, listener: (...args: ViewerConnectionEvents[K]) => void): unknown;
}

interface Received {
  bytes: number;
  packets: number;
  lost: number;
}

/**
 * A viewer's session with the node that serves it, over one signalling connection to the
 * deployment's public endpoint (which carries it to a relay when the controller places the
 * viewer there): a recv transport and one consumer per source. The only connection a viewer
 * opens to a relay is for media. It does not reconnect; `Watch` does.
 *
 * (Over 350 lines: what the socket, the transport and the node say all lands on one connection
 * state, and whether media still arrives, read from the same consumers, is what decides between
 * signal lost, suspect and failed; split, each part would need the others' private state.)
 */
export class ViewerConnection extends TypedEmitter<ViewerConnectionEvents> implements WatchConnection {
  readonly nodeId: string;
  #stream: StreamInfo;
  /** The quality this connection subscribed with. */
  readonly quality: Quality;
  readonly #signal: SignalClient;
  readonly #transport: msc.Transport;
  readonly #consumers = new Map<string, msc.Consumer>();
  readonly #integrity: IntegrityMonitor;
  #queue: Promise<void> = Promise.resolve();
  /**
   * consumer.new announced while stream.subscribe was on its way (a source replaced just after
   * the node made the subscription's consumers): taken after those, which they replace.
   */
  #early: ConsumerInfo[] | undefined = [];
  /** Media bytes received when the last ping left (undefined where stats are unavailable). */
  #atPing: number | undefined;
  #receiptTimer: ReturnType<typeof setInterval> | undefined;
  #gapTimer: ReturnType<typeof setInterval> | undefined;
  #connectDeadline: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #onEarlyConsumer: ((consumer: msc.Consumer) => void) | undefined;

  static async open(options: ViewerConnectionOptions): Promise<ViewerConnection> {
    const signal = await SignalClient.connect(options.entryUrl, {
      ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
      ...(options.keepAlive !== undefined ? { keepAlive: options.keepAlive } : {}),
      timeoutMs: options.timeoutMs,
    });
    {
      // The stream's state may change while we set up (a relay that had just been given the
      // stream goes live when its pipe opens): the latest word counts, not the watch answer's.
      let lateState: StreamInfo['state'] | undefined;
      const stopListening = signal.onNotification('stream.state', ({ state }) => (lateState = state));
      let integrity: IntegrityMonitor | undefined;
      try {
        const asked = Date.now();
        const res = await signal.request('stream.watch', {
          streamId: options.streamId,
          ...(options.token ? { token: options.token } : {}),
          ...(options.exclude.length ? { exclude: options.exclude.slice(-16) } : {}),
        });
        const answeredAt = Date.now();
        const device = await options.devices.get(res.rtpCapabilities as msc.RtpCapabilities);
        const info = await signal.request('transport.create', { direction: 'recv' });
        // The key that checks every frame comes from the origin we talk to (res.integrity), never from the node.
        integrity = new IntegrityMonitor({ streamId: options.streamId, anchor: res.integrity, anchorAt: answeredAt, anchorRttMs: answeredAt - asked, ...(options.integrity ? { options: options.integrity } : {}) });
        const transport = device.createRecvTransport({
          additionalSettings: integrity.peerConnectionSettings,
          id: info.id,
          iceParameters: info.iceParameters as unknown as msc.IceParameters,
          iceCandidates: info.iceCandidates as unknown as msc.IceCandidate[],
          dtlsParameters: info.dtlsParameters as unknown as msc.DtlsParameters,
          iceServers: res.iceServers as IceServer[] as RTCIceServer[],
          // For the stream's digest channel (a data consumer).
          ...(info.sctpParameters ? { sctpParameters: info.sctpParameters as unknown as msc.SctpParameters } : {}),
        });
        const conn = new ViewerConnection(res.nodeId, res.stream, signal, transport, integrity, options.quality);
        conn.#onEarlyConsumer = options.onConsumer;
        await conn.#subscribe(device, options.quality);
        void integrity.subscribeDigests(signal, transport);
        if (res.receiptIntervalMs) conn.#startReceipts(res.receiptIntervalMs);
        // Nobody listens to this connection's events until it is returned: what changed meanwhile is its starting state.
        if (lateState) {
          conn.#stream = { ...conn.#stream, state: lateState };
          integrity.setLive(lateState === 'live');
        }
        stopListening();
        return conn;
      } catch (err) {
        integrity?.close();
        signal.close();
        throw typedError(err);
      }
    }
  }

  private constructor(nodeId: string, stream: StreamInfo, signal: SignalClient, transport: msc.Transport, integrity: IntegrityMonitor, quality: Quality) {
    super();
    this.nodeId = nodeId;
    this.quality = quality;
    this.#stream = stream;
    this.#signal = signal;
    this.#transport = transport;
    this.#integrity = integrity;
    integrity.setLive(stream.state === 'live');
    integrity.on('status', (s) => this.safeEmit('integrity', s));
    integrity.on('stalled', (detail) => this.safeEmit('stalled', detail));
    integrity.on('originlayers', (top) => this.safeEmit('originlayers', top));
    integrity.on('keyframewanted', () => {
      for (const c of this.#consumers.values()) {
        if (c.kind === 'video' && !c.closed) this.#signal.request('consumer.requestKeyFrame', { consumerId: c.id }).catch(() => {});
      }
    });
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      signal
        .request('transport.connect', { transportId: transport.id, dtlsParameters: dtlsParameters as never })
        .then(() => callback(), errback);
    });
    let disconnectTimer: ReturnType<typeof setTimeout> | undefined;
    integrity.setMediaConnected(transport.connectionState === 'connected');
    transport.on('connectionstatechange', (state) => {
      clearTimeout(disconnectTimer);
      if (state === 'connected') clearTimeout(this.#connectDeadline);
      integrity.setMediaConnected(state === 'connected');
      if (state === 'failed' || state === 'closed') {
        this.#fail(new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', `media transport ${state}`));
      } else if (state === 'disconnected') {
        // ICE may come back by itself; give it a moment before moving elsewhere.
        disconnectTimer = setTimeout(() => this.#fail(new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'media transport disconnected')), 2000);
      }
    });
    signal.on('close', (code, reason) => {
      const err = closeError(code, reason);
      // An abrupt close of the signalling alone (the endpoint we talk to restarted), or pings that
      // went unanswered while media kept coming, leave the media path up.
      if ((err.code === 'CASCADE_ERR_CLIENT_CONNECTION' || err.code === 'CASCADE_ERR_CLIENT_TIMEOUT') && transport.connectionState === 'connected') {
        void this.#mediaSinceLastPing().then((flowing) => {
          if (this.#closed) return;
          if (flowing || err.code === 'CASCADE_ERR_CLIENT_CONNECTION') this.safeEmit('signallost', err);
          else this.#fail(err);
        });
        return;
      }
      this.#fail(err);
    });
    signal.on('ping', () => void this.#bytesReceived().then((bytes) => (this.#atPing = bytes)));
    signal.onNotification('consumer.new', (c) => (this.#early ? this.#early.push(c) : void this.#enqueue(() => this.#consume(c))));
    signal.onNotification('consumer.closed', ({ consumerId }) => {
      const consumer = this.#consumers.get(consumerId);
      if (!consumer) return;
      consumer.close();
      this.#consumers.delete(consumerId);
      this.safeEmit('consumerclosed', consumer);
    });
    signal.onNotification('consumer.layers', (layers) => {
      if (this.#consumers.has(layers.consumerId)) this.safeEmit('layers', layers);
    });
    signal.onNotification('stream.state', ({ state }) => {
      integrity.setLive(state === 'live');
      this.safeEmit('streamstate', state);
    });
    signal.onNotification('node.draining', () => this.safeEmit('draining'));
    signal.on('suspect', () => void this.#mediaSinceLastPing().then((flowing) => !this.#closed && this.safeEmit(flowing ? 'signalsilent' : 'suspect')));
    // Silent and no media since the ping left: frozen or cut off, most likely. Moving now (make-
    // before-break) instead of at the suspect deadline is what keeps a failover under a second.
    // A node slow to answer while its media flows, or stats we cannot read, wait for that deadline.
    signal.on('slow', () => void this.#judgeSlow());
    this.#watchMediaGaps();
  }

  /**
   * A frozen node is silent on both paths; its media stops first to be noticed. Probing the node
   * as soon as frames stop (once per gap) starts the same verdict as the keep-alive's (slow, and
   * no media since the ping) without waiting for the keep-alive's own schedule.
   */
  #watchMediaGaps(): void {
    let probedAt: number | undefined;
    this.#gapTimer = setInterval(() => {
      const at = this.#integrity.lastMediaAt;
      if (this.#closed || at === undefined || at === probedAt || this.#transport.connectionState !== 'connected') return;
      if (Date.now() - at < MEDIA_GAP_MS) return;
      probedAt = at;
      this.#signal.probe();
    }, MEDIA_GAP_CHECK_MS);
    (this.#gapTimer as { unref?: () => void }).unref?.();
  }

  /** The stream as this node described it, with its state as of when the connection was handed over. */
  get stream(): StreamInfo {
    return this.#stream;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get consumers(): msc.Consumer[] {
    return [...this.#consumers.values()];
  }

  /** Whether what this node sends verifies (with counts so far). */
  get integrity(): IntegrityStatus {
    return this.#integrity.status;
  }

  /** Tell the origin (never the node) what is wrong with this node; the controller checks it before acting. */
  report(state: 'tampered' | 'unverified' | 'stalled', code: string, detail?: string): void {
    this.#signal
      .request('viewer.integrity', { streamId: this.stream.id, nodeId: this.nodeId, state, code, ...(detail ? { detail: detail.slice(0, 200) } : {}) })
      .catch(() => {
        // An older origin, or the connection going: the viewer moves anyway.
      });
  }

  /** Close the connection (and its consumers) without emitting an error. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#receiptTimer);
    clearInterval(this.#gapTimer);
    clearTimeout(this.#connectDeadline);
    this.#integrity.close();
    this.#transport.close();
    this.#signal.close();
    this.safeEmit('closed', undefined);
    this.removeAllListeners();
  }

  /** Receive another quality from now on (the node applies a few changes a second at most). */
  async setQuality(quality: Quality): Promise<void> {
    await this.#signal.request('quality.set', { quality });
  }

  async #subscribe(device: Device, quality: Quality): Promise<void> {
    const { consumers } = await this.#signal.request('stream.subscribe', {
      transportId: this.#transport.id,
      rtpCapabilities: device.recvRtpCapabilities as never,
      // Sent only when not the default: a node that predates qualities still takes the subscription.
      ...(quality !== 'auto' ? { quality } : {}),
    });
    const early = this.#early ?? [];
    this.#early = undefined;
    // All queued at once, in the order the node made them. Queued one by one after each other's
    // setup, a replacement announced meanwhile got in before the consumer it replaced, and the
    // dead one was shown last (traced: a failover's viewer whose picture never came back).
    await Promise.all([...consumers, ...early].map((c) => this.#enqueue(() => this.#consume(c))));
  }

  /** What each consumer received so far (consumers whose stats cannot be read are left out). */
  async #receivedByConsumer(): Promise<Map<string, Received>> {
    const out = new Map<string, Received>();
    for (const [id, c] of this.#consumers) {
      try {
        for (const s of (await c.getStats()).values() as Iterable<{ type: string; bytesReceived?: number; packetsReceived?: number; packetsLost?: number }>) {
          if (s.type !== 'inbound-rtp' || typeof s.bytesReceived !== 'number') continue;
          const r = out.get(id) ?? { bytes: 0, packets: 0, lost: 0 };
          r.bytes += s.bytesReceived;
          r.packets += s.packetsReceived ?? 0;
          r.lost += Math.max(0, s.packetsLost ?? 0);
          out.set(id, r);
        }
      } catch {
        // closed meanwhile, or no stats here
      }
    }
    return out;
  }

  /** What every consumer received so far (inbound-rtp), or undefined where this environment gives no stats. */
  async #received(): Promise<Received | undefined> {
    const byConsumer = await this.#receivedByConsumer();
    if (byConsumer.size === 0) return undefined;
    const total = { bytes: 0, packets: 0, lost: 0 };
    for (const r of byConsumer.values()) {
      total.bytes += r.bytes;
      total.packets += r.packets;
      total.lost += r.lost;
    }
    return total;
  }

  async #bytesReceived(): Promise<number | undefined> {
    return (await this.#received())?.bytes;
  }

  /**
   * Every intervalMs, tell the endpoint what arrived from the node over that interval (how the
   * deployment learns what each node really delivers, and credits its volunteers).
   */
  #startReceipts(intervalMs: number): void {
    let seq = 0;
    // Per consumer: a consumer replaced meanwhile (a new source, a layer) starts from zero
    // instead of making the total go backwards and swallowing an interval.
    let last = new Map<string, Received>();
    let lastAt = Date.now();
    this.#receiptTimer = setInterval(() => {
      void this.#receivedByConsumer().then((now) => {
        if (now.size === 0 || this.#closed) return;
        const at = Date.now();
        const delta = { bytes: 0, packets: 0, lost: 0 };
        for (const [id, r] of now) {
          const before = last.get(id) ?? { bytes: 0, packets: 0, lost: 0 };
          delta.bytes += Math.max(0, r.bytes - before.bytes);
          delta.packets += Math.max(0, r.packets - before.packets);
          delta.lost += Math.max(0, r.lost - before.lost);
        }
        const intervalMs = Math.max(1, Math.round(at - lastAt));
        last = now;
        lastAt = at;
        this.#signal
          .request('viewer.receipt', { streamId: this.stream.id, nodeId: this.nodeId, seq: ++seq, intervalMs, ...delta })
          .catch(() => {
            // The endpoint may not count it (an older server, a refusal): nothing to do about it here.
          });
      });
    }, intervalMs);
    (this.#receiptTimer as { unref?: () => void }).unref?.();
  }

  /**
   * A ping has gone unanswered for a moment: frozen, if the media stopped too. Usually nothing came
   * since the ping left. When some came (the node froze just after the ping left, its last packets
   * behind it), the media is looked at again over SLOW_RECHECK_MS: without this, such a freeze
   * waited for the suspect deadline (traced: moves 490 ms after a freeze instead of 300).
   */
  async #judgeSlow(): Promise<void> {
    if (await this.#mediaStopped()) {
      if (!this.#closed) this.safeEmit('suspect');
      return;
    }
    const before = await this.#bytesReceived();
    if (before === undefined) return;
    await new Promise((r) => setTimeout(r, SLOW_RECHECK_MS));
    if (this.#closed || !this.#signal.pingUnanswered) return;
    if ((await this.#bytesReceived()) === before && !this.#closed) this.safeEmit('suspect');
  }

  /** Whether we can tell that no media arrived since the last ping left (false when it flows, or cannot be told). */
  async #mediaStopped(): Promise<boolean> {
    const before = this.#atPing;
    const now = await this.#bytesReceived();
    return before !== undefined && now !== undefined && now === before && this.#consumers.size > 0;
  }

  /** Whether media arrived since the last ping left (false when it cannot be told). */
  async #mediaSinceLastPing(): Promise<boolean> {
    const before = this.#atPing;
    const now = await this.#bytesReceived();
    return before !== undefined && now !== undefined && now > before;
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #consume(info: ConsumerInfo): Promise<void> {
    if (this.#closed) return;
    const consumer = await this.#transport.consume({
      id: info.id,
      producerId: info.producerId,
      kind: info.kind,
      rtpParameters: info.rtpParameters as unknown as msc.RtpParameters,
    });
    this.#consumers.set(consumer.id, consumer);
    // The transport connects with its first consumer (mediasoup-client connects it then).
    if (!this.#connectDeadline && this.#transport.connectionState !== 'connected') {
      this.#connectDeadline = setTimeout(() => {
        if (this.#transport.connectionState !== 'connected') this.#fail(new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', `media transport not connected after ${MEDIA_CONNECT_DEADLINE_MS / 1000} s`));
      }, MEDIA_CONNECT_DEADLINE_MS);
      (this.#connectDeadline as { unref?: () => void }).unref?.();
    }
    // Checked from its first frame: the node sends nothing before the resume.
    this.#integrity.attach(consumer);
    try {
      this.#onEarlyConsumer?.(consumer);
    } catch (err) {
      this.safeEmit('listenererror', 'consumer', err);
    }
    try {
      await this.#signal.request('consumer.resume', { consumerId: consumer.id });
    } catch (err) {
      // Its source was replaced meanwhile (the node switched parents, the broadcaster came
      // back): the node closed this consumer and announces the new one as consumer.new.
      if (typedError(err).code !== 'CASCADE_ERR_MEDIA_CONSUMER_NOT_FOUND') throw err;
      consumer.close();
      this.#consumers.delete(consumer.id);
      return;
    }
    this.safeEmit('consumer', consumer);
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#receiptTimer);
    clearInterval(this.#gapTimer);
    clearTimeout(this.#connectDeadline);
    this.#integrity.close();
    try {
      this.#transport.close();
    } catch {
      // already closed
    }
    this.#signal.close();
    this.safeEmit('closed', error);
    this.removeAllListeners();
  }
}
