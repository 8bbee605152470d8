import {
  CascadeError,
  fromWireError,
  NodeRequests,
  Notifications,
  Peer,
  TypedEmitter,
  ENDPOINT_REQUESTS,
  parseEnvelope,
  signallingUrl,
  webSocketChannel,
  type NodeParams,
  type MessageId,
  type NodeRequestType,
  type NodeResult,
  type NotificationData,
  type NotificationType,
  type PeerClock,
} from '@cascade/protocol';
import { ConnectionError, typedError } from './errors.js';

/** The WebSocket constructor to use (the browser's, or `ws` in Node). */
export type WebSocketCtor = new (url: string) => WebSocket;

/**
 * Liveness of the node, judged by the client. A node that crashes closes its sockets and is
 * noticed at once; one that freezes or drops off the network (a volunteer's laptop lid
 * closing) says nothing, and neither the WebSocket nor ICE notices for many seconds. So the
 * client pings: a node that has not answered a ping within `suspectAfterMs` is suspect (a
 * viewer starts moving elsewhere, make-before-break), and within `deadAfterMs` it is gone.
 */
export interface KeepAliveOptions {
  /** How often the keep-alive looks (ms). Default 100. */
  intervalMs: number;
  /** Ping once nothing has been heard for this long (ms). Default: intervalMs. */
  pingAfterMs?: number;
  /**
   * A ping unanswered this long emits `slow` (once per ping): what a frozen node looks like at
   * first. The viewer moves if its media stopped too; a node that is only slow to answer while
   * its media flows is left alone (ms). Default: no `slow`.
   */
  quickSuspectAfterMs?: number;
  /** An unanswered ping older than this emits `suspect`, once per ping (ms). Default: a third of deadAfterMs. */
  suspectAfterMs?: number;
  /** An unanswered ping older than this closes the connection with CLIENT_TIMEOUT (ms). Default 1500. */
  deadAfterMs: number;
}

export const DEFAULT_KEEP_ALIVE: KeepAliveOptions = { intervalMs: 100, pingAfterMs: 200, quickSuspectAfterMs: 150, suspectAfterMs: 500, deadAfterMs: 1500 };

export interface SignalClientOptions {
  WebSocket?: WebSocketCtor;
  /** ms to wait for the connection to open. Default 5000. */
  timeoutMs?: number;
  /** Ping the node to notice one that froze or dropped off the network; `false` turns it off. */
  keepAlive?: KeepAliveOptions | false;
  /** Time as the keep-alive judges it (and the Peer under it); injected in tests. Default: Date.now. */
  clock?: PeerClock;
}

export type SignalClientEvents = {
  notification: [type: NotificationType, data: unknown];
  /** A ping has gone unanswered for `suspectAfterMs`: the node may have frozen or dropped off the network. */
  suspect: [];
  /** A ping has gone unanswered for `quickSuspectAfterMs` (see KeepAliveOptions). */
  slow: [];
  /** A ping was sent (nothing heard for a while): a moment to note how much media has come. */
  ping: [];
  close: [code: number, reason: string];
  listenererror: [event: string, error: unknown];
};

/**
 * One signalling connection to a node's `/ws`: framing, request/response, validation of what
 * the server sends, typed errors. Reconnection is the business of the layer above.
 */
export class SignalClient extends TypedEmitter<SignalClientEvents> {
  readonly url: string;
  readonly #peer: Peer<Record<string, never>, typeof NodeRequests, typeof Notifications>;
  #closed = false;
  /** When the node last sent anything, and when our oldest unanswered ping left. */
  #lastHeard: number;
  #pingSentAt: number | undefined;
  /** When the latest ping the node answered had left (see answeredPingSentAt). */
  #answeredPingSentAt: number | undefined;
  /** The ping `slow` was last said of (once per ping). */
  #slowed: number | undefined;
  #keepAlive: KeepAliveOptions | undefined;
  #keepAliveTimer: ReturnType<typeof setInterval> | undefined;
  readonly #clock: PeerClock;
  /** Requests out that the endpoint answers itself (see #answeredByEndpoint). */
  readonly #endpointIds = new Set<MessageId>();

  static connect(baseUrl: string, options: SignalClientOptions = {}): Promise<SignalClient> {
    const Ctor = options.WebSocket ?? (globalThis.WebSocket as WebSocketCtor | undefined);
    if (!Ctor) return Promise.reject(new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'no WebSocket implementation'));
    let url: string;
    try {
      url = signallingUrl(baseUrl, '/ws');
    } catch {
      return Promise.reject(new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', `bad URL ${baseUrl}`));
    }
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new Ctor(url);
      } catch (err) {
        // A browser refuses some connections at once (an insecure ws:// from a secure page): typed, never thrown raw.
        reject(typedError(err));
        return;
      }
      const timer = setTimeout(() => {
        ws.close();
        reject(new ConnectionError('CASCADE_ERR_CLIENT_TIMEOUT', `connecting to ${baseUrl}`));
      }, options.timeoutMs ?? 5000);
      const onOpen = () => {
        clearTimeout(timer);
        ws.removeEventListener('error', onError);
        resolve(new SignalClient(url, ws, options.keepAlive ?? DEFAULT_KEEP_ALIVE, options.clock ?? { now: () => Date.now() }));
      };
      const onError = () => {
        clearTimeout(timer);
        ws.removeEventListener('open', onOpen);
        reject(new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', `cannot reach ${baseUrl}`));
      };
      ws.addEventListener('open', onOpen, { once: true });
      ws.addEventListener('error', onError, { once: true });
    });
  }

  private constructor(url: string, ws: WebSocket, keepAlive: KeepAliveOptions | false, clock: PeerClock) {
    super();
    this.url = url;
    this.#clock = clock;
    this.#lastHeard = clock.now();
    const channel = webSocketChannel(ws);
    // Anything the node sends counts as heard (before the Peer reads it: its handlers may be slow),
    // except the endpoint's own answers (see ENDPOINT_REQUESTS).
    channel.onMessage((raw) => {
      if (!this.#answeredByEndpoint(raw)) this.#lastHeard = clock.now();
    });
    this.#peer = new Peer({
      channel,
      clock,
      inbound: {},
      outbound: NodeRequests,
      notifications: Notifications,
      maxMessageBytes: 4 * 1024 * 1024,
      ignoreUnknownNotifications: true,
    });
    ws.addEventListener('error', () => {});
    this.#peer.on('notification', (type, data) => this.safeEmit('notification', type as NotificationType, data));
    if (keepAlive) this.#startKeepAlive(keepAlive);
    this.#peer.on('close', (code, reason) => {
      this.#closed = true;
      clearInterval(this.#keepAliveTimer);
      this.safeEmit('close', code, reason);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a keep-alive ping is out and unanswered. */
  /**
   * When the latest ping the node answered had left (client clock), or undefined. Its answer was
   * sent after the node read that ping, and everything the node sent before it (a consumer it
   * closed) came first on this one ordered connection: what the node had done by then is known.
   */
  get answeredPingSentAt(): number | undefined {
    return this.#answeredPingSentAt;
  }

  get pingUnanswered(): boolean {
    return this.#pingSentAt !== undefined && this.#lastHeard < this.#pingSentAt;
  }

  #startKeepAlive({ intervalMs, deadAfterMs, suspectAfterMs = deadAfterMs / 3, pingAfterMs = intervalMs, quickSuspectAfterMs }: KeepAliveOptions): void {
    let lastTick = this.#clock.now();
    let suspected: number | undefined;
    this.#keepAlive = { intervalMs, deadAfterMs, suspectAfterMs, pingAfterMs, ...(quickSuspectAfterMs !== undefined ? { quickSuspectAfterMs } : {}) };
    const answered = () => !this.pingUnanswered;
    this.#keepAliveTimer = setInterval(() => {
      const now = this.#clock.now();
      // A tick that comes late means our own thread was stalled (or the tab throttled): the
      // answer may be waiting unread behind this timer, so judge nothing this round.
      const stalled = now - lastTick > 2 * intervalMs;
      lastTick = now;
      if (this.#pingSentAt !== undefined && answered()) this.#pingSentAt = undefined;
      if (stalled) {
        this.#pingSentAt = undefined;
        return;
      }
      const sentAt = this.#pingSentAt;
      if (sentAt !== undefined) {
        const age = now - sentAt;
        if (age > deadAfterMs) this.#afterPendingInput(() => !answered() && this.#peer.close(4504, 'CASCADE_ERR_CLIENT_TIMEOUT'));
        else if (age >= suspectAfterMs && suspected !== sentAt) {
          suspected = sentAt;
          this.#afterPendingInput(() => !answered() && this.#pingSentAt === sentAt && this.safeEmit('suspect'));
        } else if (quickSuspectAfterMs !== undefined && age >= quickSuspectAfterMs) {
          this.#sayIfSlow(sentAt);
        }
        return;
      }
      if (now - this.#lastHeard < pingAfterMs) return;
      this.#ping(now);
    }, intervalMs);
    // Node: a keep-alive alone must not hold the process open.
    (this.#keepAliveTimer as { unref?: () => void }).unref?.();
  }

  #ping(now: number): void {
    this.#pingSentAt = now;
    this.safeEmit('ping');
    // The answer (or any error reply: an older node without pings is alive too) counts as heard.
    this.#peer.request('session.ping', {}, { timeoutMs: (this.#keepAlive?.deadAfterMs ?? 1500) * 2 }).then(
      () => (this.#answeredPingSentAt = Math.max(this.#answeredPingSentAt ?? now, now)),
      () => {},
    );
  }

  #sayIfSlow(sentAt: number): void {
    if (this.#slowed === sentAt) return;
    this.#slowed = sentAt;
    this.#afterPendingInput(() => this.pingUnanswered && this.#pingSentAt === sentAt && this.safeEmit('slow'));
  }

  /**
   * Ask the node now whether it is there, because the caller's media stopped: a ping unless one
   * is out, and its `slow` verdict exactly quickSuspectAfterMs later. Left to the keep-alive, the
   * ping would wait until nothing had been heard for pingAfterMs and the verdict for its next
   * look: a frozen node was noticed 150 to 670 ms after it froze, depending on when it had last
   * answered, instead of in about 300.
   */
  probe(): void {
    const quick = this.#keepAlive?.quickSuspectAfterMs;
    if (this.#closed || quick === undefined || this.pingUnanswered) return;
    const sentAt = this.#clock.now();
    this.#ping(sentAt);
    this.#verdictFor(sentAt, quick);
  }

  /**
   * The probe's verdict on the ping sent at `sentAt`, `quick` ms after it. A keep-alive tick that
   * came late (this thread starved) forgets the ping out; with nothing heard since, the node is
   * asked again rather than left to the keep-alive's own ping and look. Traced in the freeze
   * benchmark: werift viewers, each a process of its own on a busy 2-core machine, probed a
   * frozen relay at 0.13 s, a stalled tick forgot the ping, and they moved at 0.7 s instead of
   * 0.3 s.
   */
  #verdictFor(sentAt: number, quick: number): void {
    const timer = setTimeout(() => {
      if (this.#closed || this.#lastHeard >= sentAt) return;
      const out = this.#pingSentAt;
      if (out === sentAt) return this.#sayIfSlow(sentAt);
      if (out === undefined) return this.probe();
      // The keep-alive pinged again meanwhile: judge that one as quickly.
      this.#verdictFor(out, Math.max(0, out + quick - this.#clock.now()));
    }, quick);
    (timer as { unref?: () => void }).unref?.();
  }

  /**
   * Run a verdict after the input already waiting has been read: timers fire before pending
   * socket reads, so an answer that arrived while this thread was busy is seen first.
   */
  #afterPendingInput(verdict: () => unknown): void {
    setTimeout(() => {
      if (!this.#closed) verdict();
    }, 0);
  }

  async request<T extends NodeRequestType>(type: T, params: NodeParams<T>, timeoutMs?: number): Promise<NodeResult<T>> {
    let endpointId: MessageId | undefined;
    const onId = ENDPOINT_REQUESTS.has(type) ? (id: MessageId) => this.#endpointIds.add((endpointId = id)) : undefined;
    try {
      return (await this.#peer.request(type, params, { ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(onId ? { onId } : {}) })) as NodeResult<T>;
    } catch (err) {
      throw typedError(err);
    } finally {
      if (endpointId !== undefined) this.#endpointIds.delete(endpointId);
    }
  }

  /**
   * Whether a frame answers a request the public endpoint answers itself (a receipt): it says
   * nothing of the node behind it. Counted as heard, it hid a frozen relay: the six viewers of
   * one, whose receipts went out together (their timers started with the same failover), had
   * their probe's verdict cancelled by the answers and moved at 0.7 s instead of 0.3 s (traced
   * in the flat-tree freeze benchmark, 4 rounds of 20). Parsed only while such a request is out.
   */
  #answeredByEndpoint(raw: unknown): boolean {
    if (this.#endpointIds.size === 0) return false;
    const text = typeof raw === 'string' ? raw : raw instanceof Uint8Array ? new TextDecoder().decode(raw) : undefined;
    if (text === undefined) return false;
    try {
      const env = parseEnvelope(text);
      return env.kind === 'response' && env.id !== null && this.#endpointIds.has(env.id);
    } catch {
      return false;
    }
  }

  onNotification<T extends NotificationType>(type: T, handler: (data: NotificationData<T>) => void): () => void {
    const l = (t: NotificationType, data: unknown) => {
      if (t === type) handler(data as NotificationData<T>);
    };
    this.on('notification', l);
    return () => this.off('notification', l);
  }

  close(code = 1000, reason = 'client closing'): void {
    if (this.#closed) return;
    this.#peer.close(code, reason);
  }
}

/** A close code from the server (4000 + status) as a typed error. */
export function closeError(code: number, reason: string): CascadeError {
  if (code >= 4000 && code < 5000 && reason.startsWith('CASCADE_ERR_')) {
    return typedError(fromWireError({ code: reason, message: reason }));
  }
  return new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', `connection closed (${code}${reason ? ` ${reason}` : ''})`);
}
