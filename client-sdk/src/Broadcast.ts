import type { types as msc } from 'mediasoup-client';
import { CascadeError, DefaultReconnectPolicy, TypedEmitter, silentLogger, type Logger, type ReconnectPolicy } from '@cascade/protocol';
import { retryLoop } from './retryLoop.js';
import { isRetryable, typedError } from './errors.js';
import { CascadeEvent, ConnectionState } from './events.js';
import type { KeepAliveOptions, WebSocketCtor } from './SignalClient.js';
import { DeviceCache } from './DeviceCache.js';
import { PublishConnection, type BroadcastConnection, type PublishConnectionOptions } from './PublishConnection.js';
import { videoEncodings, type SimulcastLayer } from './quality.js';

export interface BroadcastOptions {
  /** The origin's http(s) URL. */
  url: string;
  /** A broadcast token (the demo obtains a development one from /api/dev/token). */
  token: string;
  /** Camera (and microphone) to send; tracks are sent as they are, never transcoded by Cascade. */
  stream: MediaStream;
  /** Reuse a stream id (e.g. after a page reload); by default the server picks one. */
  streamId?: string;
  title?: string;
  /** Max video bitrate without simulcast (`simulcast: false`), bps. Default 1500000. */
  maxVideoBitrate?: number;
  /**
   * The video layers to send (simulcast), lowest first: each viewer receives the one its link
   * and its chosen quality allow. Default DEFAULT_SIMULCAST (a quarter, half and full size of the
   * camera at 150, 500 and 1500 kbit/s); `false`: one encoding of maxVideoBitrate.
   */
  simulcast?: readonly SimulcastLayer[] | false;
  /** Video codec: 'vp8' (default) or 'h264' (Constrained Baseline). Rejects with MediaError where the browser cannot send it. */
  videoCodec?: 'vp8' | 'h264';
  reconnectPolicy?: ReconnectPolicy;
  timeoutMs?: number;
  /** How a frozen or unreachable origin is noticed (default: ping when silent for 250 ms, gone after 1.5 s unanswered). */
  keepAlive?: KeepAliveOptions | false;
  WebSocket?: WebSocketCtor;
  handlerName?: msc.BuiltinHandlerName;
  logger?: Logger;
}

export type BroadcastEvents = {
  [CascadeEvent.StateChanged]: [state: ConnectionState];
  [CascadeEvent.Live]: [];
  [CascadeEvent.Reconnecting]: [cause: Error];
  [CascadeEvent.Reconnected]: [ms: number];
  [CascadeEvent.Viewers]: [count: number];
  [CascadeEvent.Error]: [error: CascadeError];
  [CascadeEvent.Stopped]: [];
  listenererror: [event: string, error: unknown];
};

/** What a Broadcast is given apart from its options; internal (not in index.ts): tests hand in fake connections. */
export interface BroadcastDeps {
  /** Publishes at the origin (start, and each reconnect). Default: PublishConnection.open. */
  openConnection?: (options: PublishConnectionOptions) => Promise<BroadcastConnection>;
}

/**
 * Going live. The connection is kept: if it drops, the SDK reconnects with the same stream id
 * (`resume`) and produces the same tracks again, and viewers pick the new media up without
 * rejoining. Each connection to the origin is a PublishConnection; this owns the retry loop.
 */
export class Broadcast extends TypedEmitter<BroadcastEvents> {
  #options: BroadcastOptions;
  #policy: ReconnectPolicy;
  #devices: DeviceCache;
  #log: Logger;
  readonly #openConnection: (options: PublishConnectionOptions) => Promise<BroadcastConnection>;
  #link: BroadcastConnection | undefined;
  #streamId: string | undefined;
  #state = ConnectionState.Connecting;
  #viewers = 0;
  #stopped = false;
  #reconnecting = false;

  constructor(options: BroadcastOptions, deps: BroadcastDeps = {}) {
    super();
    // Wrong layers are the caller's mistake: a TypeError now, not a failed connection later.
    videoEncodings(options.simulcast, options.maxVideoBitrate ?? 1_500_000, options.videoCodec ?? 'vp8');
    if (options.videoCodec !== undefined && options.videoCodec !== 'vp8' && options.videoCodec !== 'h264') throw new TypeError("videoCodec: 'vp8' or 'h264'");
    this.#options = options;
    this.#openConnection = deps.openConnection ?? ((o) => PublishConnection.open(o));
    this.#streamId = options.streamId;
    this.#policy = options.reconnectPolicy ?? new DefaultReconnectPolicy({ maxElapsedMs: 5 * 60_000 });
    this.#devices = new DeviceCache(options.handlerName);
    this.#log = (options.logger ?? silentLogger).child({ component: 'Broadcast' });
  }

  /** Assigned by the server on the first connection. */
  get streamId(): string {
    if (!this.#streamId) throw new CascadeError('CASCADE_ERR_INVALID_STATE', 'not started');
    return this.#streamId;
  }
  get state(): ConnectionState {
    return this.#state;
  }
  get viewers(): number {
    return this.#viewers;
  }
  get producers(): msc.Producer[] {
    return this.#link?.producers ?? [];
  }

  async start(): Promise<this> {
    this.#link = await this.#connect(false);
    this.#setState(ConnectionState.Connected);
    this.safeEmit(CascadeEvent.Live);
    return this;
  }

  /** End the stream for everyone; idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const link = this.#link;
    this.#link = undefined;
    if (link && !link.closed) await link.unpublish(2000);
    link?.close();
    this.#setState(ConnectionState.Disconnected);
    this.safeEmit(CascadeEvent.Stopped);
    this.removeAllListeners();
  }

  async #connect(resume: boolean): Promise<BroadcastConnection> {
    const o = this.#options;
    return this.#openConnection({
      url: o.url,
      token: o.token,
      stream: o.stream,
      ...(this.#streamId ? { streamId: this.#streamId } : {}),
      ...(o.title ? { title: o.title } : {}),
      resume,
      simulcast: o.simulcast,
      maxVideoBitrate: o.maxVideoBitrate ?? 1_500_000,
      videoCodec: o.videoCodec ?? 'vp8',
      timeoutMs: o.timeoutMs ?? 5000,
      ...(o.keepAlive !== undefined ? { keepAlive: o.keepAlive } : {}),
      ...(o.WebSocket ? { WebSocket: o.WebSocket } : {}),
      devices: this.#devices,
      logger: this.#log,
      onPublished: (streamId) => (this.#streamId = streamId),
      onViewers: (viewers) => {
        this.#viewers = viewers;
        this.safeEmit(CascadeEvent.Viewers, viewers);
      },
      onLost: (link, cause) => this.#lost(link, cause),
    });
  }

  #lost(link: BroadcastConnection, cause: Error): void {
    if (this.#stopped || this.#link !== link) return;
    link.close();
    this.#link = undefined;
    void this.#reconnect(cause);
  }

  async #reconnect(cause: Error): Promise<void> {
    if (this.#reconnecting || this.#stopped) return;
    this.#reconnecting = true;
    const started = Date.now();
    this.#setState(ConnectionState.Reconnecting);
    this.safeEmit(CascadeEvent.Reconnecting, cause);
    try {
      const link = await retryLoop({
        policy: this.#policy,
        stopped: () => this.#stopped,
        attempt: () => this.#connect(true),
        retryable: (e) => isRetryable(e),
      });
      if (!link) return;
      if (this.#stopped) {
        link.close();
        return;
      }
      this.#link = link;
      this.#setState(ConnectionState.Connected);
      this.safeEmit(CascadeEvent.Reconnected, Date.now() - started);
    } catch (err) {
      const e = typedError(err);
      this.#log.warn({ code: e.code }, 'broadcast failed');
      this.safeEmit(CascadeEvent.Error, e);
      await this.stop();
    } finally {
      this.#reconnecting = false;
    }
  }

  #setState(s: ConnectionState): void {
    if (s === this.#state) return;
    this.#state = s;
    this.safeEmit(CascadeEvent.StateChanged, s);
  }
}

/** Go live: `const b = await broadcast({ url, token, stream }); console.log(b.streamId);` */
export function broadcast(options: BroadcastOptions): Promise<Broadcast> {
  return new Broadcast(options).start();
}
