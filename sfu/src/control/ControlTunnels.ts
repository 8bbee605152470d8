import { randomBytes } from 'node:crypto';
import { ManualChannel, type HeldTunnel, type MessageChannel, type RelayNotificationData, type RelayNotifications } from '@cascade/protocol';
import type { Tunnel, TunnelInfo } from '../ControlPlane.js';

/** What the tunnels need of the `/control` connection they travel on. */
export interface TunnelLink {
  /** Registered and connected: frames can be carried. */
  connected(): boolean;
  /** Send a tunnel frame to the controller (dropped while disconnected). */
  notify(type: 'tunnel.open' | 'tunnel.data' | 'tunnel.close', data: unknown): void;
}

/** A tunnel this node opened (a pipe to its parent): reachable while the control connection is up. */
class ClientTunnel extends ManualChannel implements Tunnel {
  readonly id: string;
  readonly nodeId: string;
  readonly #link: TunnelLink;

  constructor(id: string, nodeId: string, link: TunnelLink, send: (d: string) => void, close: (code: number, reason: string) => void) {
    super(send, close);
    this.id = id;
    this.nodeId = nodeId;
    this.#link = link;
  }

  get reachable(): boolean {
    return this.#link.connected();
  }

  sendChecked(data: string): Promise<boolean> {
    const ok = this.reachable && this.readyState === 1;
    if (ok) this.send(data);
    return Promise.resolve(ok);
  }
}

/**
 * The sessions a node carries through its controller connection: the ones other nodes (and the
 * public endpoint's viewers) open here ("hosted"), and the ones this node opens elsewhere
 * ("opened", pipes to its parent). They outlive a lost connection: a registration lists them
 * (held()) so that a controller can join both ends again.
 */
export class ControlTunnels {
  readonly #link: TunnelLink;
  readonly #hosted = new Map<string, { channel: ManualChannel; peer: string }>();
  readonly #opened = new Map<string, ClientTunnel>();
  #onTunnel: ((channel: MessageChannel, info: TunnelInfo) => void) | undefined;

  constructor(link: TunnelLink) {
    this.#link = link;
  }

  /** Sessions other nodes hold here through the controller. */
  get hostedCount(): number {
    return this.#hosted.size;
  }

  /** Who takes the sessions other nodes open here. */
  onTunnel(handler: (channel: MessageChannel, info: TunnelInfo) => void): void {
    this.#onTunnel = handler;
  }

  /** A session to `nodeId`; closed at once (CONTROLLER_UNAVAILABLE) while the connection is down. */
  open(nodeId: string): Tunnel {
    const id = randomBytes(16).toString('base64url');
    const tunnel: ClientTunnel = new ClientTunnel(
      id,
      nodeId,
      this.#link,
      (data) => this.#link.notify('tunnel.data', { id, data }),
      (code, reason) => {
        this.#opened.delete(id);
        this.#link.notify('tunnel.close', { id, code, reason: reason.slice(0, 200) });
      },
    );
    if (!this.#link.connected()) {
      queueMicrotask(() => tunnel.closed(4503, 'CASCADE_ERR_CONTROLLER_UNAVAILABLE'));
    } else {
      this.#opened.set(id, tunnel);
      this.#link.notify('tunnel.open', { id, to: nodeId });
    }
    return tunnel;
  }

  /** What a registration declares, so that the controller keeps both ends joined. */
  held(): HeldTunnel[] {
    return [
      ...[...this.#hosted].map(([id, h]) => ({ id, peer: h.peer, role: 'host' as const })),
      ...[...this.#opened].map(([id, t]) => ({ id, peer: t.nodeId, role: 'client' as const })),
    ];
  }

  /** A tunnel frame from the controller; false if `type` is not one. */
  receive(type: keyof typeof RelayNotifications, data: unknown): boolean {
    switch (type) {
      case 'tunnel.open': {
        const d = data as RelayNotificationData<'tunnel.open'>;
        if (this.#hosted.has(d.id) || !this.#onTunnel) return true;
        const id = d.id;
        const channel = new ManualChannel(
          (frame) => this.#link.notify('tunnel.data', { id, data: frame }),
          (code, reason) => {
            this.#hosted.delete(id);
            this.#link.notify('tunnel.close', { id, code, reason: reason.slice(0, 200) });
          },
        );
        this.#hosted.set(id, { channel, peer: d.from });
        channel.onClose(() => this.#hosted.delete(id));
        this.#onTunnel(channel, { id, from: d.from, remoteAddress: d.remoteAddress ?? '' });
        return true;
      }
      case 'tunnel.data': {
        const d = data as RelayNotificationData<'tunnel.data'>;
        (this.#hosted.get(d.id)?.channel ?? this.#opened.get(d.id))?.deliver(d.data);
        return true;
      }
      case 'tunnel.close': {
        const d = data as RelayNotificationData<'tunnel.close'>;
        const channel = this.#hosted.get(d.id)?.channel ?? this.#opened.get(d.id);
        this.#hosted.delete(d.id);
        this.#opened.delete(d.id);
        channel?.closed(d.code, d.reason);
        return true;
      }
      default:
        return false;
    }
  }

  /** The node stops: every session ends with `reason`. */
  closeAll(code: number, reason: string): void {
    const all = [...[...this.#hosted.values()].map((h) => h.channel), ...this.#opened.values()];
    this.#hosted.clear();
    this.#opened.clear();
    for (const c of all) c.closed(code, reason);
  }
}
