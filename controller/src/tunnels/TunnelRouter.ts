import { randomBytes } from 'node:crypto';
import { CascadeError, ManualChannel, TypedEmitter, type Logger } from '@cascade/protocol';
import { controllerEndpoint, CONTROLLER_ENDPOINT_PREFIX, type BusMessage, type MessageBus } from './MessageBus.js';

/** How the router reaches a media node connected to this instance (its control connection, or the embedded origin). */
export interface NodeLink {
  /** Hand the node a tunnel message (open, data, close) for a session it hosts or opened. */
  deliver(msg: BusMessage): void;
}

/** A tunnel opened from this instance's public endpoint (a viewer's session, forwarded). */
export class FrontTunnel extends ManualChannel {
  readonly id: string;
  readonly nodeId: string;
  readonly #sendChecked: (data: string) => Promise<boolean>;
  #reachable = true;

  constructor(id: string, nodeId: string, sendChecked: (data: string) => Promise<boolean>, onLocalClose: (code: number, reason: string) => void) {
    super((data) => void sendChecked(data), onLocalClose);
    this.id = id;
    this.nodeId = nodeId;
    this.#sendChecked = sendChecked;
  }

  /** Send; resolves false when the frame could not be handed to the node's instance. */
  sendChecked(data: string): Promise<boolean> {
    return this.readyState === 1 ? this.#sendChecked(data) : Promise.resolve(false);
  }

  get reachable(): boolean {
    return this.#reachable;
  }

  /** @private The router's view of the path to the node. */
  setReachable(reachable: boolean): void {
    this.#reachable = reachable;
  }
}

/** What a node connected here holds: sessions it hosts (for whom) and tunnels it opened (to whom). */
interface LinkState {
  link: NodeLink;
  hosted: Map<string, string>;
  opened: Map<string, string>;
  /** Refused frames (unknown tunnel ids) in the current window, to cut off a flooding node. */
  refused: number;
}

export type TunnelRouterEvents = {
  /** A node sent a frame for a tunnel it holds no part in (already refused). */
  refused: [nodeId: string, tunnelId: string, count: number];
  listenererror: [event: string, error: unknown];
};
export type TunnelRouterObserverEvents = {
  /** A frame went through this instance (either way). */
  frame: [direction: 'tonode' | 'fromnode'];
  listenererror: [event: string, error: unknown];
};

/** Refused frames a node may send per sweep period before its connection is closed. */
export const MAX_REFUSED_PER_SWEEP = 50;

/**
 * Carries node sessions through the controller: a viewer at this instance's public endpoint
 * talks to the relay the controller placed it on, and a child relay to its parent, without
 * either ever connecting to the other. Frames go from endpoint to endpoint over the message
 * bus; this instance checks that every frame a node sends belongs to a tunnel that node holds,
 * and stamps its origin itself (a node cannot speak for another).
 *
 * Tunnels are soft state that outlive the control plane: a node that loses its connection keeps
 * its sessions (and their media) and lists them when it registers again, anywhere.
 */
export class TunnelRouter extends TypedEmitter<TunnelRouterEvents> {
  readonly observer = new TypedEmitter<TunnelRouterObserverEvents>();
  readonly endpoint: string;
  readonly #bus: MessageBus;
  readonly #log: Logger;
  readonly #links = new Map<string, LinkState>();
  readonly #fronts = new Map<string, FrontTunnel>();
  /** Closes that could not be delivered (the node was unreachable), retried by the sweep. */
  readonly #undelivered: BusMessage[] = [];
  readonly #routeTtlMs: number;
  readonly #sweeper: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(bus: MessageBus, options: { routeTtlMs: number; sweepIntervalMs?: number }, deps: { logger: Logger }) {
    super();
    this.#bus = bus;
    this.#routeTtlMs = options.routeTtlMs;
    this.endpoint = controllerEndpoint(bus.instanceId);
    this.#log = deps.logger.child({ component: 'TunnelRouter', instance: bus.instanceId });
    bus.onMessage((msg) => this.#fromBus(msg));
    this.#sweeper = setInterval(() => void this.#sweep(), options.sweepIntervalMs ?? 1000);
    this.#sweeper.unref();
  }

  get tunnelCount(): number {
    return this.#fronts.size;
  }

  get nodeCount(): number {
    return this.#links.size;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    // Viewers' sessions end with this process; the nodes hosting them learn it from the sweep of
    // the instance they reconnect to (their peer endpoint is gone).
    for (const t of [...this.#fronts.values()]) t.closed(1001, 'CASCADE_ERR_NODE_SHUTTING_DOWN');
    this.#fronts.clear();
    for (const nodeId of [...this.#links.keys()]) void this.#bus.release(nodeId).catch(() => {});
    this.#links.clear();
  }

  // ------------------------------------------------------------------ nodes connected here

  /**
   * A node connected to this instance (or registered again): frames for it come here. `held`
   * are the tunnels it still holds from an earlier connection.
   */
  async attachNode(nodeId: string, link: NodeLink, held: { id: string; peer: string; role: 'host' | 'client' }[] = []): Promise<void> {
    const state: LinkState = { link, hosted: new Map(), opened: new Map(), refused: 0 };
    for (const t of held) (t.role === 'host' ? state.hosted : state.opened).set(t.id, t.peer);
    this.#links.set(nodeId, state);
    await this.#bus.hold(nodeId, this.#routeTtlMs);
  }

  /** Keep the node's route alive (called with its heartbeats). */
  async refreshNode(nodeId: string): Promise<void> {
    if (this.#links.has(nodeId)) await this.#bus.hold(nodeId, this.#routeTtlMs);
  }

  /**
   * The node's connection here ended. `gone`: the node itself left or died (its peers are told
   * at once, with NODE_GONE); otherwise this instance is going away and the node will carry its
   * tunnels to another one.
   */
  detachNode(nodeId: string, link: NodeLink, gone: boolean): void {
    const state = this.#links.get(nodeId);
    if (!state || state.link !== link) return;
    this.#links.delete(nodeId);
    void this.#bus.release(nodeId).catch(() => {});
    if (!gone) return;
    const reason = 'CASCADE_ERR_NODE_GONE';
    for (const [id, peer] of state.hosted) void this.#send({ op: 'close', id, to: peer, from: nodeId, code: 4502, reason });
    for (const [id, target] of state.opened) void this.#send({ op: 'close', id, to: target, from: nodeId, code: 4502, reason });
  }

  /**
   * The node stopped answering (or was caught altering media): tell whoever it serves, so that
   * viewers move before it is declared gone.
   */
  nodeSilent(nodeId: string, notice: 'silent' | 'condemned' = 'silent'): void {
    const state = this.#links.get(nodeId);
    if (!state) return;
    for (const [id, peer] of state.hosted) void this.#send({ op: 'notice', id, to: peer, from: nodeId, notice });
  }

  /**
   * A tunnel frame from a node connected here. Throws CASCADE_ERR_RELAY_UNKNOWN_SESSION for a
   * tunnel it has no part in (the caller answers it; a node that keeps doing it is cut off).
   */
  fromNode(nodeId: string, msg: { op: 'open'; id: string; to: string } | { op: 'data'; id: string; data: string } | { op: 'close'; id: string; code: number; reason: string }): void {
    const state = this.#links.get(nodeId);
    if (!state) throw new CascadeError('CASCADE_ERR_RELAY_NOT_REGISTERED');
    if (msg.op === 'open') {
      if (msg.to === nodeId || msg.to.startsWith(CONTROLLER_ENDPOINT_PREFIX)) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'a tunnel goes to another node');
      if (state.hosted.has(msg.id) || state.opened.has(msg.id)) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'tunnel id in use');
      state.opened.set(msg.id, msg.to);
      void this.#send({ op: 'open', id: msg.id, to: msg.to, from: nodeId }).then((ok) => {
        if (!ok && state.opened.delete(msg.id)) state.link.deliver({ op: 'close', id: msg.id, to: nodeId, from: msg.to, code: 4504, reason: 'CASCADE_ERR_NODE_UNREACHABLE' });
      });
      return;
    }
    const peer = state.hosted.get(msg.id) ?? state.opened.get(msg.id);
    if (peer === undefined) {
      state.refused++;
      this.safeEmit('refused', nodeId, msg.id, state.refused);
      throw new CascadeError('CASCADE_ERR_RELAY_UNKNOWN_SESSION', msg.id);
    }
    this.observer.safeEmit('frame', 'fromnode');
    if (msg.op === 'data') {
      void this.#send({ op: 'data', id: msg.id, to: peer, from: nodeId, data: msg.data });
      return;
    }
    state.hosted.delete(msg.id);
    state.opened.delete(msg.id);
    void this.#send({ op: 'close', id: msg.id, to: peer, from: nodeId, code: msg.code, reason: msg.reason }, true);
  }

  /** Sessions hosted by a node connected here. */
  hostedCount(nodeId: string): number {
    return this.#links.get(nodeId)?.hosted.size ?? 0;
  }

  /** Refused frames of a node in the current sweep window. */
  refusedCount(nodeId: string): number {
    return this.#links.get(nodeId)?.refused ?? 0;
  }

  // ------------------------------------------------------------------ this instance's public endpoint

  /** Open a session on `nodeId` for a viewer at this instance's public endpoint. */
  openFront(nodeId: string, info: { remoteAddress: string }): FrontTunnel {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_NODE_SHUTTING_DOWN');
    const id = randomBytes(16).toString('base64url');
    const tunnel: FrontTunnel = new FrontTunnel(
      id,
      nodeId,
      async (data) => {
        this.observer.safeEmit('frame', 'tonode');
        const ok = await this.#send({ op: 'data', id, to: nodeId, from: this.endpoint, data });
        this.#onSendResult(tunnel, ok);
        return ok;
      },
      (code, reason) => {
        this.#fronts.delete(id);
        void this.#send({ op: 'close', id, to: nodeId, from: this.endpoint, code, reason }, true);
      },
    );
    this.#fronts.set(id, tunnel);
    void this.#send({ op: 'open', id, to: nodeId, from: this.endpoint, remoteAddress: info.remoteAddress }).then((ok) => {
      if (ok) return;
      // Nobody holds the node: the session cannot start. (Later sends only mark it unreachable.)
      this.#fronts.delete(id);
      tunnel.closed(4504, 'CASCADE_ERR_NODE_UNREACHABLE');
    });
    return tunnel;
  }

  // ------------------------------------------------------------------ internals

  #onSendResult(tunnel: FrontTunnel, ok: boolean): void {
    if (tunnel.reachable !== ok) {
      this.#log.info({ tunnel: tunnel.id, nodeId: tunnel.nodeId, reachable: ok }, ok ? 'node reachable again' : 'node unreachable: session kept, frames held back');
    }
    tunnel.setReachable(ok);
  }

  async #send(msg: BusMessage, retryClose = false): Promise<boolean> {
    const ok = await this.#bus.send(msg);
    if (!ok && retryClose && msg.op === 'close' && this.#undelivered.length < 10_000) this.#undelivered.push(msg);
    return ok;
  }

  #fromBus(msg: BusMessage): void {
    if (this.#closed) return;
    if (msg.to === this.endpoint) {
      this.#toFront(msg);
      return;
    }
    const state = this.#links.get(msg.to);
    if (!state) {
      // A node that is not (or no longer) connected here: say so to whoever spoke, once.
      if (msg.op === 'open' || msg.op === 'data') void this.#bus.send({ op: 'close', id: msg.id, to: msg.from, from: msg.to, code: 4504, reason: 'CASCADE_ERR_NODE_UNREACHABLE' });
      return;
    }
    switch (msg.op) {
      case 'open':
        if (state.hosted.has(msg.id) || state.opened.has(msg.id)) return;
        state.hosted.set(msg.id, msg.from);
        break;
      case 'data':
      case 'notice':
        // Only the tunnel's other end may speak on it.
        if (state.hosted.get(msg.id) !== msg.from && state.opened.get(msg.id) !== msg.from) return;
        break;
      case 'close':
        if (state.hosted.get(msg.id) !== msg.from && state.opened.get(msg.id) !== msg.from) return;
        state.hosted.delete(msg.id);
        state.opened.delete(msg.id);
        break;
    }
    this.observer.safeEmit('frame', 'tonode');
    state.link.deliver(msg);
  }

  #toFront(msg: BusMessage): void {
    const tunnel = this.#fronts.get(msg.id);
    if (!tunnel || msg.from !== tunnel.nodeId) {
      // A node speaking on a tunnel that is over (the viewer left while the node was away): end it there.
      if (!tunnel && (msg.op === 'data' || msg.op === 'notice')) void this.#bus.send({ op: 'close', id: msg.id, to: msg.from, from: this.endpoint, code: 1000, reason: 'session over' });
      return;
    }
    this.observer.safeEmit('frame', 'fromnode');
    switch (msg.op) {
      case 'data':
        tunnel.setReachable(true);
        tunnel.deliver(msg.data ?? '');
        break;
      case 'notice':
        // The node went silent: a notification the viewer's SDK already acts on (a make-before-break move).
        tunnel.deliver(
          JSON.stringify({ v: 1, type: 'node.draining', data: { reason: msg.notice === 'condemned' ? 'the node serving you altered the stream' : 'the node serving you stopped answering' } }),
        );
        break;
      case 'close':
        this.#fronts.delete(msg.id);
        tunnel.closed(msg.code ?? 1000, msg.reason ?? '');
        break;
    }
  }

  async #sweep(): Promise<void> {
    if (this.#closed) return;
    for (const state of this.#links.values()) state.refused = 0;
    // Closes that found nobody: the node may be back.
    for (const msg of this.#undelivered.splice(0)) void this.#send(msg, true);
    // Viewers whose node became unreachable: is it back?
    const checked = new Map<string, Promise<boolean>>();
    for (const t of this.#fronts.values()) {
      if (t.reachable) continue;
      let held = checked.get(t.nodeId);
      if (!held) checked.set(t.nodeId, (held = this.#bus.held(t.nodeId).catch(() => false)));
      if (await held) this.#onSendResult(t, true);
    }
    // Sessions hosted here for a public endpoint whose instance died (the viewers' connections died
    // with it). A node peer that is away may be coming back: nodeGone() ends its sessions.
    const peers = new Map<string, Promise<boolean>>();
    for (const [nodeId, state] of this.#links) {
      for (const [id, peer] of state.hosted) {
        if (!peer.startsWith(CONTROLLER_ENDPOINT_PREFIX)) continue;
        let alive = peers.get(peer);
        if (!alive) peers.set(peer, (alive = this.#bus.held(peer).catch(() => true)));
        if (await alive) continue;
        if (this.#links.get(nodeId) !== state || !state.hosted.delete(id)) continue;
        this.#log.info({ nodeId, tunnel: id, peer }, 'tunnel peer gone: closing the session it held');
        state.link.deliver({ op: 'close', id, to: nodeId, from: peer, code: 1001, reason: 'CASCADE_ERR_CLIENT_CONNECTION' });
      }
    }
  }
}
