import {
  CascadeError,
  fromWireError,
  NodeRequests,
  Notifications,
  Peer,
  TypedEmitter,
  signallingUrl,
  type NodeParams,
  type NodeRequestType,
  type NodeResult,
  type NotificationData,
  type NotificationType,
} from '@cascade/protocol';
import { ConnectionError, typedError } from './errors.js';

/** The WebSocket constructor to use (the browser's, or `ws` in Node). */
export type WebSocketCtor = new (url: string) => WebSocket;

export type SignalClientEvents = {
  notification: [type: NotificationType, data: unknown];
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

  static connect(baseUrl: string, options: { WebSocket?: WebSocketCtor; timeoutMs?: number } = {}): Promise<SignalClient> {
    const Ctor = options.WebSocket ?? (globalThis.WebSocket as WebSocketCtor | undefined);
    if (!Ctor) return Promise.reject(new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'no WebSocket implementation'));
    let url: string;
    try {
      url = signallingUrl(baseUrl, '/ws');
    } catch {
      return Promise.reject(new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', `bad URL ${baseUrl}`));
    }
    return new Promise((resolve, reject) => {
      const ws = new Ctor(url);
      const timer = setTimeout(() => {
        ws.close();
        reject(new ConnectionError('CASCADE_ERR_CLIENT_TIMEOUT', `connecting to ${baseUrl}`));
      }, options.timeoutMs ?? 5000);
      const onOpen = () => {
        clearTimeout(timer);
        ws.removeEventListener('error', onError);
        resolve(new SignalClient(url, ws));
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

  private constructor(url: string, ws: WebSocket) {
    super();
    this.url = url;
    this.#peer = new Peer({
      socket: ws,
      inbound: {},
      outbound: NodeRequests,
      notifications: Notifications,
      maxMessageBytes: 4 * 1024 * 1024,
      ignoreUnknownNotifications: true,
    });
    ws.addEventListener('message', (ev) => this.#peer.receive(ev.data));
    ws.addEventListener('close', (ev) => this.#peer.socketClosed(ev.code, ev.reason));
    ws.addEventListener('error', () => {});
    this.#peer.on('notification', (type, data) => this.safeEmit('notification', type as NotificationType, data));
    this.#peer.on('close', (code, reason) => {
      this.#closed = true;
      this.safeEmit('close', code, reason);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  async request<T extends NodeRequestType>(type: T, params: NodeParams<T>, timeoutMs?: number): Promise<NodeResult<T>> {
    try {
      return (await this.#peer.request(type, params, timeoutMs !== undefined ? { timeoutMs } : {})) as NodeResult<T>;
    } catch (err) {
      throw typedError(err);
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
