import type { types as msc } from 'mediasoup-client';
import {
  CascadeError,
  DefaultReconnectPolicy,
  TypedEmitter,
  silentLogger,
  type Logger,
  type ReconnectPolicy,
  type StreamInfo,
  type StreamState,
} from '@cascade/protocol';
import { CapacityError, ConnectionError, isRetryable, StreamEndedError, StreamNotFoundError, typedError } from './errors.js';
import { CascadeEvent, ConnectionState } from './events.js';
import type { KeepAliveOptions, WebSocketCtor } from './SignalClient.js';
import { DeviceCache } from './DeviceCache.js';
import { ViewerConnection, type ViewerConnectionOptions, type WatchConnection } from './ViewerConnection.js';
import { retryLoop } from './retryLoop.js';
import { waitForMedia } from './waitForMedia.js';
import { WatchQuality, type Quality, type QualityInfo } from './quality.js';
import type { IntegrityOptions } from './integrity/IntegrityMonitor.js';
import type { IntegrityStatus } from './integrity/IntegrityVerifier.js';

/** What CascadeEvent.Integrity carries: the state of the frames from `nodeId`. */
export type WatchIntegrity = IntegrityStatus & { nodeId: string };

export interface WatchOptions {
  /** Any Cascade node (usually the origin's http(s) URL); the controller picks the node that serves you. */
  url: string;
  streamId: string;
  /** Watch token, where the deployment requires one. */
  token?: string;
  /** Default: exponential backoff with jitter, first retry immediate, give up after 60 s. */
  reconnectPolicy?: ReconnectPolicy;
  /** ms to wait for a node to answer. Default 5000. */
  timeoutMs?: number;
  /** How a node that froze or dropped off the network is noticed (default: ping when nothing was heard for 200 ms; unanswered for 150 ms while the media stopped too, or for 500 ms, move elsewhere; for 1.5 s, gone). */
  keepAlive?: KeepAliveOptions | false;
  /**
   * Checking every frame against the origin's signed digests (default: on, frames held until
   * they verify). `{ hold: false }` shows frames at once and only reports; `{ enabled: false }`
   * turns checking off.
   */
  integrity?: IntegrityOptions;
  /** Node.js only: a WebSocket implementation (e.g. `ws`). */
  WebSocket?: WebSocketCtor;
  /** Node.js only: force a mediasoup-client handler (e.g. 'Chrome111' with werift or wrtc). */
  handlerName?: msc.BuiltinHandlerName;
  /** Node.js only: a MediaStream constructor when there is no global one. */
  MediaStream?: new () => MediaStream;
  /**
   * What to receive: 'auto' (default) follows the link, 'high' | 'medium' | 'low' cap the video
   * at that layer, 'audio' receives no video. Change it later with setQuality().
   */
  quality?: Quality;
  logger?: Logger;
}

/** Why a Watch changed nodes (see CascadeEvent.NodeChanged). */
export type NodeChangeReason = 'joined' | 'reconnected' | MoveReason;
type MoveReason = 'draining' | 'unresponsive' | 'signal lost' | 'integrity' | 'stalled';
/** Moves whose old node still sends a picture worth showing until the new node's decodes. */
const PICTURE_STILL_COMES: readonly MoveReason[] = ['draining', 'signal lost'];

export type WatchEvents = {
  [CascadeEvent.StateChanged]: [state: ConnectionState];
  [CascadeEvent.Live]: [];
  [CascadeEvent.Waiting]: [state: 'waiting' | 'reconnecting'];
  [CascadeEvent.Ended]: [];
  [CascadeEvent.Reconnecting]: [cause: Error];
  [CascadeEvent.Reconnected]: [ms: number];
  /** Served by another node: why (the first join, a reconnect after the node was lost, or a planned move and its reason). */
  [CascadeEvent.NodeChanged]: [nodeId: string, why: NodeChangeReason];
  [CascadeEvent.Track]: [track: MediaStreamTrack, consumer: msc.Consumer];
  [CascadeEvent.Quality]: [info: QualityInfo];
  [CascadeEvent.Integrity]: [status: WatchIntegrity];
  [CascadeEvent.Error]: [error: CascadeError];
  [CascadeEvent.Stopped]: [];
  listenererror: [event: string, error: unknown];
};

/** What a Watch is given apart from its options; internal (not in index.ts): tests hand in fake connections. */
export interface WatchDeps {
  /** Joins the stream at one node (each join, reconnect and move). Default: ViewerConnection.open. */
  openConnection?: (options: ViewerConnectionOptions) => Promise<WatchConnection>;
}

/** Browsers decode what they receive (and report framesDecoded); Node clients hand RTP to the caller. */
const DECODES_MEDIA = typeof document !== 'undefined';

/** Joins tried again at once when the node chosen went away in the middle of one. */
const JOIN_RETRIES = 2;
/**
 * Every node full when we join: tried again this often, for this long in all (ms), before the
 * viewer is told. A viewer moving make-before-break holds a place on its old node and on its new
 * one for a moment: traced in the credits and deployed tests, a page that joined just then was
 * refused and gave up, although a place freed a few hundred ms later.
 */
const FULL_RETRY_MS = 500;
const FULL_RETRY_FOR_MS = 3000;

/** How long a planned move waits for the new node's media before switching anyway (ms). */
const MOVE_MEDIA_WAIT_MS = 3000;

/**
 * The node closed our video consumer (its source was replaced) and announced no other within
 * this long while the stream is live and video is wanted: it left us without video, which the
 * picture check cannot see (it judges the consumers there are). Treated as a stopped picture (ms).
 */
const NO_VIDEO_AFTER_MS = 1500;

/**
 * Watching one stream. `mediaStream` stays the same object for the whole session: when the
 * SDK moves to another node (failover or drain) the new tracks replace the old ones in it,
 * so a `<video>` keeps playing without being touched.
 *
 * (Over 350 lines: one state machine, join, move, reconnect and stop, whose transitions guard
 * one another through #moving, #reconnecting and #lostDuringMove, and read best together. The
 * connection to a node is ViewerConnection; the retry loop is retryLoop.ts.)
 */
export class Watch extends TypedEmitter<WatchEvents> {
  readonly mediaStream: MediaStream;
  readonly streamId: string;
  #options: WatchOptions;
  #policy: ReconnectPolicy;
  #devices: DeviceCache;
  #log: Logger;
  readonly #openConnection: (options: ViewerConnectionOptions) => Promise<WatchConnection>;
  #conn: WatchConnection | undefined;
  readonly #quality: WatchQuality;
  #state = ConnectionState.Connecting;
  #streamState: StreamState = 'waiting';
  #stream: StreamInfo | undefined;
  #stopped = false;
  #reconnecting = false;
  #moving = false;
  /** The node was lost while a move was under way: the move's connection takes over, or a reconnect follows. */
  #lostDuringMove: CascadeError | undefined;
  /** Nodes that failed us recently; the controller avoids them. */
  #exclude: string[] = [];

  constructor(options: WatchOptions, deps: WatchDeps = {}) {
    super();
    this.#options = options;
    this.#openConnection = deps.openConnection ?? ((o) => ViewerConnection.open(o));
    this.streamId = options.streamId;
    this.#policy = options.reconnectPolicy ?? new DefaultReconnectPolicy();
    this.#devices = new DeviceCache(options.handlerName);
    this.#log = (options.logger ?? silentLogger).child({ component: 'Watch', streamId: options.streamId });
    this.#quality = new WatchQuality(options.quality, (info) => this.safeEmit(CascadeEvent.Quality, info));
    const MS = options.MediaStream ?? globalThis.MediaStream;
    if (!MS) throw new TypeError('no MediaStream implementation; pass options.MediaStream');
    this.mediaStream = new MS();
  }

  get state(): ConnectionState {
    return this.#state;
  }
  /** waiting, live, reconnecting (the broadcaster's), ended. */
  get streamState(): StreamState {
    return this.#streamState;
  }
  get stream(): StreamInfo | undefined {
    return this.#stream;
  }
  get nodeId(): string | undefined {
    return this.#conn?.nodeId;
  }
  /** The quality asked for and the layer received now. */
  get quality(): QualityInfo {
    return this.#quality.info;
  }

  /** Receive another quality from now on (kept across failovers); TypeError for an unknown one. */
  setQuality(quality: Quality): void {
    this.#quality.set(quality);
  }

  /** Whether the frames from the current node verify, with counts (undefined before the first connection). */
  get integrity(): WatchIntegrity | undefined {
    return this.#conn && { ...this.#conn.integrity, nodeId: this.#conn.nodeId };
  }

  /** The consumers currently feeding mediaStream (for getStats()). */
  get consumers(): msc.Consumer[] {
    return this.#conn?.consumers ?? [];
  }

  /** Join; resolves once connected to a node, rejects with a typed error if the stream cannot be watched. */
  async start(): Promise<this> {
    let conn: WatchConnection;
    const since = Date.now();
    for (let attempt = 0; ; ) {
      try {
        conn = await this.#open();
        break;
      } catch (err) {
        const e = typedError(err);
        if (this.#stopped) throw e;
        if (e.code === 'CASCADE_ERR_NODE_CAPACITY' && Date.now() + FULL_RETRY_MS - since <= FULL_RETRY_FOR_MS) {
          this.#log.info({}, 'every node is full: trying again');
          await new Promise((r) => setTimeout(r, FULL_RETRY_MS));
          if (this.#stopped) throw new ConnectionError('CASCADE_ERR_CLIENT_CLOSED', 'stopped while starting');
          continue;
        }
        // The node we were placed on went away while we joined: the controller places us elsewhere.
        if (attempt++ >= JOIN_RETRIES || (e.code !== 'CASCADE_ERR_NODE_GONE' && e.code !== 'CASCADE_ERR_NODE_UNREACHABLE')) throw e;
        this.#log.warn({ code: e.code, attempt }, 'the node went away while we joined: trying again');
      }
    }
    if (this.#stopped) {
      // stop() was called while we were joining.
      conn.close();
      throw new ConnectionError('CASCADE_ERR_CLIENT_CLOSED', 'stopped while starting');
    }
    this.#adopt(conn, 'joined');
    this.#setState(ConnectionState.Connected);
    return this;
  }

  /** Leave; idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#quality.close();
    this.#conn?.close();
    this.#conn = undefined;
    for (const t of this.mediaStream.getTracks()) t.stop();
    this.#setState(ConnectionState.Disconnected);
    this.safeEmit(CascadeEvent.Stopped);
    this.removeAllListeners();
  }

  #open(): Promise<WatchConnection> {
    const o = this.#options;
    return this.#openConnection({
      entryUrl: o.url,
      streamId: o.streamId,
      exclude: this.#exclude,
      devices: this.#devices,
      timeoutMs: o.timeoutMs ?? 5000,
      quality: this.#quality.quality,
      // Where the caller reads RTP itself (nothing here decodes), it gets each track before the
      // track's first packet: announced at the switch, after the resume, the first key frame may
      // have come and gone (traced: werift viewers of a frozen relay that then waited 350 ms for
      // the next). There is no picture to keep meanwhile (see #move).
      ...(DECODES_MEDIA ? {} : { onConsumer: (c: msc.Consumer) => this.#onConsumer(c) }),
      ...(o.keepAlive !== undefined ? { keepAlive: o.keepAlive } : {}),
      ...(o.token ? { token: o.token } : {}),
      ...(o.WebSocket ? { WebSocket: o.WebSocket } : {}),
      ...(o.integrity ? { integrity: o.integrity } : {}),
    });
  }

  #adopt(conn: WatchConnection, why: NodeChangeReason): void {
    const previous = this.#conn;
    this.#conn = conn;
    this.#stream = conn.stream;
    conn.on('consumer', (c) => this.#onConsumer(c));
    conn.on('consumerclosed', (c) => this.#onConsumerClosed(conn, c));
    this.#quality.adopt(conn, this.mediaStream);
    conn.on('streamstate', (s) => this.#onStreamState(s));
    conn.on('draining', () => void this.#move('draining'));
    // A node silent for a moment may be frozen or cut off: get going elsewhere while it still
    // might answer (make-before-break), instead of waiting for it to be declared dead.
    conn.on('suspect', () => void this.#move('unresponsive'));
    // The way to the node is broken but its media still comes: join again, keeping it until then.
    conn.on('signalsilent', () => void this.#move('signal lost'));
    // Our endpoint went away but the media still flows: keep it while we join again elsewhere.
    conn.on('signallost', (err) => {
      if (this.#conn !== conn || this.#stopped) return;
      if (this.#moving) this.#lostDuringMove = err;
      else void this.#move('signal lost', err);
    });
    // Frames that do not verify, or no picture at all: tell the origin (it checks the node itself) and leave.
    conn.on('integrity', (s) => {
      if (this.#conn !== conn || this.#stopped) return;
      this.safeEmit(CascadeEvent.Integrity, { ...s, nodeId: conn.nodeId });
      if (s.state !== 'tampered' && s.state !== 'unverified') return;
      this.#log.warn({ nodeId: conn.nodeId, code: s.code, detail: s.detail }, 'frames from this node do not verify: moving');
      conn.report(s.state, s.code ?? 'CASCADE_ERR_INTEGRITY_DIGESTS_MISSING', s.detail);
      void this.#move('integrity');
    });
    conn.on('stalled', (detail) => {
      if (this.#conn !== conn || this.#stopped) return;
      this.#log.warn({ nodeId: conn.nodeId, detail }, 'picture stopped although the stream is live: moving');
      conn.report('stalled', 'CASCADE_ERR_INTEGRITY_STALLED', detail);
      void this.#move('stalled');
    });
    conn.on('closed', (err) => {
      if (this.#conn !== conn || this.#stopped) return;
      this.#onLost(err ?? new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'connection closed'));
    });
    for (const c of conn.consumers) this.#onConsumer(c);
    this.#onStreamState(conn.stream.state);
    if (previous && previous !== conn) previous.close();
    this.safeEmit(CascadeEvent.NodeChanged, conn.nodeId, why);
    this.safeEmit(CascadeEvent.Integrity, { ...conn.integrity, nodeId: conn.nodeId });
    this.#log.info({ nodeId: conn.nodeId }, 'watching');
  }

  #onConsumer(consumer: msc.Consumer): void {
    const track = consumer.track;
    // Shown already (announced before its media was resumed, see #open): nothing new to say.
    const shown = this.mediaStream.getTracks().includes(track);
    // Add the new track before removing the old one of the same kind: the element keeps playing.
    if (!shown) this.mediaStream.addTrack(track);
    for (const old of this.mediaStream.getTracks()) {
      if (old !== track && old.kind === track.kind) this.mediaStream.removeTrack(old);
    }
    if (!shown) this.safeEmit(CascadeEvent.Track, track, consumer);
  }

  /**
   * A connection that was not adopted may have shown its tracks already (Node clients, see #open):
   * show the current connection's again, and nothing else, or the caller would read dead tracks.
   */
  #showCurrent(): void {
    const live = (this.#conn?.consumers ?? []).filter((c) => !c.closed);
    for (const kind of ['audio', 'video']) {
      const c = live.filter((x) => x.kind === kind).at(-1);
      if (c) this.#onConsumer(c);
    }
    const keep = new Set(live.map((c) => c.track));
    for (const t of this.mediaStream.getTracks()) if (!keep.has(t)) this.mediaStream.removeTrack(t);
  }

  /**
   * The consumer whose track is shown closed (its source was replaced): show the newest live one
   * of its kind, should the replacement have come first. Otherwise a page would show a dead track
   * while its connection decodes the live one, and no check would notice.
   */
  #onConsumerClosed(conn: WatchConnection, consumer: msc.Consumer): void {
    if (this.#conn !== conn) return;
    if (consumer.kind === 'video' && this.#quality.quality !== 'audio') this.#expectVideo(conn);
    if (!this.mediaStream.getTracks().includes(consumer.track)) return;
    const live = conn.consumers.filter((c) => c.kind === consumer.kind && !c.closed).at(-1);
    if (live) this.#onConsumer(live);
  }

  /**
   * A video consumer closed: another should come (consumer.new) unless audio was chosen. None
   * within NO_VIDEO_AFTER_MS: move, as from a stopped picture. Traced in the inner-relay freeze
   * benchmark: two werift viewers arriving at a relay as it changed parents lost the old
   * source's consumer, got none of the new one's, and had no video for 15 s.
   */
  #expectVideo(conn: WatchConnection): void {
    const timer = setTimeout(() => {
      if (this.#conn !== conn || this.#stopped || this.#quality.quality === 'audio' || this.#streamState !== 'live') return;
      if (conn.consumers.some((c) => c.kind === 'video' && !c.closed)) return;
      this.#log.warn({ nodeId: conn.nodeId }, 'the node closed our video and sent no other: moving');
      conn.report('stalled', 'CASCADE_ERR_INTEGRITY_STALLED', `no video consumer ${NO_VIDEO_AFTER_MS} ms after the node closed ours`);
      void this.#move('stalled');
    }, NO_VIDEO_AFTER_MS);
    (timer as { unref?: () => void }).unref?.();
  }

  #onStreamState(state: StreamState): void {
    if (state === this.#streamState && state !== 'live') return;
    const was = this.#streamState;
    this.#streamState = state;
    if (state === 'live' && was !== 'live') this.safeEmit(CascadeEvent.Live);
    else if (state === 'waiting' || state === 'reconnecting') this.safeEmit(CascadeEvent.Waiting, state);
    else if (state === 'ended') {
      this.safeEmit(CascadeEvent.Ended);
      this.stop();
    }
  }

  #onLost(cause: Error): void {
    const err = typedError(cause);
    if (err instanceof StreamEndedError) {
      this.#onStreamState('ended');
      return;
    }
    // A node that vanished is avoided; one that closed us with a reason (its worker died,
    // it restarts a session) is alive and may well be the right place to come back to.
    const vanished = err.code === 'CASCADE_ERR_CLIENT_CONNECTION' || err.code === 'CASCADE_ERR_CLIENT_TIMEOUT' || err.code === 'CASCADE_ERR_NODE_GONE';
    const nodeId = this.#conn?.nodeId;
    if (vanished && nodeId && !this.#exclude.includes(nodeId)) this.#exclude.push(nodeId);
    if (this.#moving) {
      // Already joining elsewhere: that connection is the quickest way back.
      this.#lostDuringMove = err;
      return;
    }
    void this.#reconnect(err);
  }

  async #reconnect(cause: Error): Promise<void> {
    if (this.#reconnecting || this.#stopped) return;
    this.#reconnecting = true;
    const started = Date.now();
    this.#setState(ConnectionState.Reconnecting);
    this.safeEmit(CascadeEvent.Reconnecting, cause);
    this.#log.info({ cause: cause.message }, 'reconnecting');
    try {
      const conn = await retryLoop({
        policy: this.#policy,
        stopped: () => this.#stopped,
        attempt: () => this.#open(),
        retryable: (e, retryCount) => {
          // A stream we were watching live that the controller does not know at this moment lost its
          // record with the control plane (a store restarting empty): its origin puts it back.
          const forgotten = e instanceof StreamNotFoundError && this.#streamState !== 'ended';
          if (!isRetryable(e) && !forgotten) return false;
          // The nodes we avoid may be the only ones with room (they were fine after all).
          if (e instanceof CapacityError) this.#exclude = [];
          this.#log.debug({ err: e.message, retryCount }, 'reconnect attempt failed');
          return true;
        },
      });
      if (!conn) return;
      if (this.#stopped) {
        conn.close();
        return;
      }
      this.#adopt(conn, 'reconnected');
      this.#setState(ConnectionState.Connected);
      this.safeEmit(CascadeEvent.Reconnected, Date.now() - started);
      // Nodes that failed us may be fine again later.
      this.#exclude = this.#exclude.slice(-4);
    } catch (err) {
      this.#fatal(typedError(err));
    } finally {
      this.#reconnecting = false;
    }
  }

  /**
   * The node is draining or unresponsive, or our signalling was lost with the media still up:
   * join elsewhere, switch once the new node's media flows, then leave. `lost`: the current
   * connection can no longer be used, so a failed move reconnects.
   */
  async #move(reason: MoveReason, lost?: CascadeError): Promise<void> {
    if (this.#moving || this.#reconnecting || this.#stopped) {
      if (lost && !this.#moving && !this.#reconnecting && !this.#stopped) void this.#reconnect(lost);
      return;
    }
    this.#moving = true;
    this.#lostDuringMove = lost;
    const old = this.#conn;
    let moved = false;
    try {
      // A node that drains or went silent is avoided; one whose media still flows (only our endpoint went away) is not.
      if (reason !== 'signal lost' && old && !this.#exclude.includes(old.nodeId)) this.#exclude.push(old.nodeId);
      const next = await this.#open();
      if (this.#stopped || this.#conn !== old) {
        next.close();
        return;
      }
      // A page keeps showing the old node's picture until the new node's decodes, while the old
      // node still sends one (a drain, our signalling lost). Where its picture has stopped (a
      // frozen node, a stalled or unverified picture) or its connection is gone, there is nothing
      // to keep: switching at once lets the page show the new node's first frame itself instead
      // of the one after it (measured in the failover benchmarks: Chromium viewers of a frozen
      // relay 150 to 290 ms behind werift ones, 50 ms behind after a kill). Where nothing decodes
      // (Node clients) there is no picture to keep, and whoever reads the tracks must see the new
      // node's first key frame arrive: switch now, before it does.
      if (DECODES_MEDIA && PICTURE_STILL_COMES.includes(reason)) await waitForMedia(next, MOVE_MEDIA_WAIT_MS, () => !!old?.closed);
      if (this.#stopped || this.#conn !== old || next.closed) {
        next.close();
        return;
      }
      this.#adopt(next, reason);
      moved = true;
      this.#log.info({ from: old?.nodeId, to: next.nodeId, reason }, 'moved (make-before-break)');
    } catch (err) {
      // Keep the old node while it lasts; losing it later triggers a normal reconnect.
      this.#log.warn({ err: (err as Error).message, reason }, 'planned move failed');
    } finally {
      this.#moving = false;
      if (!moved) this.#showCurrent();
      const lost = this.#lostDuringMove;
      this.#lostDuringMove = undefined;
      if (lost && !moved && !this.#stopped) void this.#reconnect(lost);
    }
  }

  #fatal(err: CascadeError): void {
    if (this.#stopped) return;
    this.#log.warn({ code: err.code }, 'watch failed');
    this.safeEmit(CascadeEvent.Error, err);
    this.stop();
  }

  #setState(s: ConnectionState): void {
    if (s === this.#state) return;
    this.#state = s;
    this.safeEmit(CascadeEvent.StateChanged, s);
  }
}

/** Watch a stream: `const w = await watch({ url, streamId }); video.srcObject = w.mediaStream;` */
export function watch(options: WatchOptions): Promise<Watch> {
  return new Watch(options).start();
}

export { StreamEndedError };
