import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import type { WebSocket } from 'ws';
import {
  CascadeError,
  ControlRequests,
  Peer,
  RelayRequests,
  type ControlParams,
  type Logger,
  type NodeCapacity,
  type VerifiedTokenClaims,
} from '@cascade/protocol';
import { WsEndpoint, type UpgradeRouter } from '@cascade/protocol/node';
import type { TokenService } from './auth/TokenService.js';
import type { RelayTokens } from './auth/RelayTokens.js';
import type { AssignEvent, TopologyController } from './TopologyController.js';
import type { NodeRecord, NodeStatus } from './types.js';

export interface RelayGatewayOptions {
  /** Ping period of relay connections. */
  pingIntervalMs: number;
  /**
   * A relay silent (no pong) this long gets no new traffic and its children are moved; it is
   * restored once it answers again (a stalled link, not a dead relay), ms.
   */
  suspectAfterMs: number;
  /** A relay silent this long is cut off (its heartbeats have expired by then), ms. */
  deadAfterMs: number;
  maxConnections: number;
  maxMessageBytes: number;
  rateLimitPerSec: number;
  requestTimeoutMs: number;
  probeTimeoutMs: number;
  heartbeatIntervalMs: number;
}

type ControlPeer = Peer<typeof ControlRequests, typeof RelayRequests, Record<string, never>>;

interface RelayConnection {
  peer: ControlPeer;
  log: Logger;
  record?: NodeRecord;
  /** What the relay declared at registration (record.capacity may be lower: see relayCapacity). */
  declared?: NodeCapacity;
  status: NodeStatus;
  nonce?: string;
  probeTimers: ReturnType<typeof setTimeout>[];
  /** The token it registered with, and the end of RelayTokens' watch on it (issue 16 hook). */
  claims?: VerifiedTokenClaims;
  untrackToken?: () => void;
}

export const PROBE_PREFIX = 'CASCADE-PROBE ';
/** Probe datagrams sent per registration (the echo comes back over the control connection). */
const PROBE_COPIES = 8;

/**
 * The controller's `/control` endpoint for relay nodes, volunteers included (untrusted):
 * token check, reachability probe before any traffic, heartbeats, placement requests on
 * behalf of viewers who arrived at the relay, and delivery of assignments decided by any
 * controller instance to the relays connected here.
 */
export class RelayGateway {
  readonly #controller: TopologyController;
  readonly #tokens: TokenService;
  readonly #relayTokens: RelayTokens | undefined;
  readonly #options: RelayGatewayOptions;
  readonly #log: Logger;
  readonly #endpoint: WsEndpoint;
  readonly #relays = new Map<string, RelayConnection>();
  readonly #byWs = new WeakMap<WebSocket, RelayConnection>();
  readonly #udp: dgram.Socket;
  #closed = false;

  constructor(
    upgrades: UpgradeRouter,
    options: RelayGatewayOptions,
    deps: { controller: TopologyController; tokens: TokenService; logger: Logger; relayTokens?: RelayTokens },
  ) {
    this.#controller = deps.controller;
    this.#tokens = deps.tokens;
    this.#relayTokens = deps.relayTokens;
    this.#options = options;
    this.#log = deps.logger.child({ component: 'RelayGateway' });
    this.#endpoint = new WsEndpoint(
      upgrades,
      {
        path: '/control',
        maxConnections: options.maxConnections,
        pingIntervalMs: options.pingIntervalMs,
        suspectAfterMs: options.suspectAfterMs,
        deadAfterMs: options.deadAfterMs,
        maxPayloadBytes: 4 * 1024 * 1024,
      },
      { logger: this.#log },
    );
    this.#endpoint.on('connection', (ws) => this.#onConnection(ws));
    this.#endpoint.on('silent', (ws, silentMs) => void this.#onSilent(ws, silentMs));
    this.#udp = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    this.#udp.on('error', (err) => this.#log.warn({ err }, 'probe socket error'));
    this.#udp.bind(0);
    this.#udp.unref();
    this.#controller.on('assign', (e) => this.#deliverAssign(e));
  }

  get relayCount(): number {
    return this.#relays.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Relays keep their media; they reconnect to another controller instance.
    await this.#endpoint.close(1012, 'controller restarting');
    try {
      this.#udp.close();
    } catch {
      // already closed
    }
  }

  #onConnection(ws: WebSocket): void {
    const o = this.#options;
    const peer: ControlPeer = new Peer({
      socket: ws,
      inbound: ControlRequests,
      outbound: RelayRequests,
      notifications: {},
      maxMessageBytes: o.maxMessageBytes,
      rateLimitPerSec: o.rateLimitPerSec,
      requestTimeoutMs: o.requestTimeoutMs,
    });
    ws.addEventListener('message', (ev) => peer.receive(ev.data));
    ws.addEventListener('close', (ev) => peer.socketClosed(ev.code, ev.reason));
    const conn: RelayConnection = { peer, log: this.#log.child({ connId: randomBytes(4).toString('hex') }), status: 'probing', probeTimers: [] };
    this.#byWs.set(ws, conn);
    peer.on('protocolerror', (err, type) => conn.log.warn({ code: err.code, type, nodeId: conn.record?.id }, 'bad control message'));
    peer.on('handled', (type, _ms, err) => {
      if (err) conn.log[err.code === 'CASCADE_ERR_INTERNAL' ? 'error' : 'info']({ type, code: err.code, err: err.cause }, 'control request refused');
    });
    peer.on('close', () => void this.#onClose(conn));

    const registered = (): NodeRecord => {
      if (!conn.record) throw new CascadeError('CASCADE_ERR_RELAY_NOT_REGISTERED', 'send node.register first');
      return conn.record;
    };
    peer
      .handle('node.register', (p) => this.#register(conn, p))
      .handle('node.probeAck', async ({ nonce }) => {
        const record = registered();
        // A stale nonce (from an earlier connection of this relay) is refused but not fatal.
        if (!conn.nonce || nonce !== conn.nonce) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'not the current probe nonce');
        this.#stopProbe(conn);
        conn.status = 'ready';
        await this.#controller.setNodeStatus(record.id, 'ready');
        peer.notify('node.ready', { nodeId: record.id });
        conn.log.info({ nodeId: record.id }, 'relay reachable; ready for traffic');
        return {};
      })
      .handle('node.heartbeat', async (p) => {
        const record = registered();
        await this.#controller.nodeHeartbeat(record, conn.status, p);
        return {};
      })
      .handle('viewer.place', (p) => {
        registered();
        return this.#controller.placeViewer(p);
      })
      .handle('viewer.left', async ({ streamId, count }) => {
        const record = registered();
        // A relay caps what it reports at its declared viewers (more departures than viewers it
        // may hold cannot all be real), so a larger count is not a miscount but nonsense.
        const max = conn.declared?.maxViewers ?? record.capacity.maxViewers;
        if (count > max) {
          conn.log.warn({ streamId, count, maxViewers: max }, 'viewer departures refused: more than the relay may serve');
          throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', `count ${count} exceeds the declared ${max} viewers`);
        }
        await this.#controller.viewersLeft(record, streamId, count);
        return {};
      })
      .handle('stream.parentLost', async ({ streamId, parentNodeId }) => {
        await this.#controller.parentLost(registered().id, streamId, parentNodeId);
        return {};
      })
      .handle('stream.released', async ({ streamId }) => {
        await this.#controller.streamReleased(registered().id, streamId);
        return {};
      })
      .handle('node.drain', async () => {
        const record = registered();
        conn.status = 'draining';
        await this.#controller.drainNode(record.id);
        return {};
      })
      // ---- relay tokens (issue 16 hook, RelayTokens): renewal before expiry
      .handle('node.renewToken', () => {
        registered();
        if (!this.#relayTokens || !conn.claims) throw new CascadeError('CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE', 'token renewal is not enabled');
        const { token, expiresAt } = this.#relayTokens.renew(conn.claims);
        return { token, expiresAt };
      });
  }

  async #register(conn: RelayConnection, p: ControlParams<'node.register'>) {
    if (conn.record) throw new CascadeError('CASCADE_ERR_RELAY_ALREADY_REGISTERED', conn.record.id);
    const claims = this.#tokens.verify(p.token, 'relay');
    const nodeId = p.node.id ?? `${claims.sub.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 60)}-${randomBytes(3).toString('hex')}`;
    const existing = await this.#controller.store.getNode(nodeId, Date.now());
    if (existing && existing.owner !== claims.sub && existing.alive) {
      throw new CascadeError('CASCADE_ERR_RELAY_ALREADY_REGISTERED', `${nodeId} belongs to another relay`);
    }
    const previous = this.#relays.get(nodeId);
    if (previous && previous !== conn) {
      // The same relay reconnecting (its old connection is not dead yet): the newest wins.
      previous.log.info({ nodeId }, 'replaced by a newer connection of the same relay');
      this.#relays.delete(nodeId);
      previous.peer.close(4409, 'replaced by a newer connection');
    }
    const record: NodeRecord = {
      id: nodeId,
      kind: 'relay',
      volunteer: claims.volunteer === true,
      owner: claims.sub,
      url: p.node.url.replace(/\/$/, ''),
      mediaIp: p.node.mediaIp,
      capacity: this.#controller.relayCapacity(p.node.capacity),
      registeredAt: Date.now(),
    };
    conn.record = record;
    conn.declared = p.node.capacity;
    conn.log = conn.log.child({ nodeId });
    this.#relays.set(nodeId, conn);
    // ---- relay tokens (issue 16 hook, RelayTokens): a revoked token drains this relay, then cuts it off.
    conn.claims = claims;
    conn.untrackToken = this.#relayTokens?.track(claims, {
      nodeId,
      drain: async () => {
        conn.status = 'draining';
        await this.#controller.drainNode(nodeId);
      },
      close: (err) => conn.peer.closeWithError(err),
    });
    await this.#controller.registerNode(record, 'probing');
    if (p.streams.length > 0) {
      // A relay that already carries streams (the controller or Redis restarted): rebuild from it.
      await this.#controller.nodeHeartbeat(record, 'probing', {
        stats: { viewers: p.streams.reduce((n, s) => n + s.viewers, 0), children: p.streams.reduce((n, s) => n + s.children, 0), bitrateInKbps: 0, bitrateOutKbps: 0, lossRate: 0, cpu: 0, bytesOut: 0 },
        streams: p.streams,
      });
    }
    this.#probe(conn, record, p.node.probePort);
    conn.log.info({ volunteer: record.volunteer, url: record.url, mediaIp: record.mediaIp, capacity: record.capacity, carried: p.streams.length }, 'relay registered');
    return {
      nodeId,
      ticketPublicKey: this.#controller.tickets.publicKey,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs,
      nodeTtlMs: this.#controller.options.nodeTtlMs,
    };
  }

  /** Send the nonce by UDP to the relay's announced media address; it must echo it back. */
  #probe(conn: RelayConnection, record: NodeRecord, port: number): void {
    const nonce = randomBytes(12).toString('hex');
    conn.nonce = nonce;
    const msg = Buffer.from(PROBE_PREFIX + nonce);
    const ip = record.mediaIp.includes(':') ? record.mediaIp : `::ffff:${record.mediaIp}`;
    const sendOnce = () => {
      if (conn.nonce !== nonce) return;
      this.#udp.send(msg, port, ip, (err) => err && conn.log.warn({ err }, 'probe send failed'));
    };
    // Copies spread over the timeout: a lossy path (a volunteer's Wi-Fi) drops some, rarely all.
    sendOnce();
    const step = Math.max(50, Math.floor(this.#options.probeTimeoutMs / PROBE_COPIES));
    for (let i = 1; i < PROBE_COPIES; i++) conn.probeTimers.push(setTimeout(sendOnce, step * i));
    conn.probeTimers.push(
      setTimeout(() => {
        if (conn.nonce !== nonce) return;
        conn.log.warn({ mediaIp: record.mediaIp, port }, 'relay failed the reachability probe');
        conn.peer.closeWithError(new CascadeError('CASCADE_ERR_RELAY_UNREACHABLE', `no answer from ${record.mediaIp}:${port}`));
      }, this.#options.probeTimeoutMs),
    );
    for (const t of conn.probeTimers) t.unref();
  }

  #stopProbe(conn: RelayConnection): void {
    conn.nonce = undefined;
    for (const t of conn.probeTimers) clearTimeout(t);
    conn.probeTimers.length = 0;
  }

  #deliverAssign(e: AssignEvent): void {
    const c = this.#relays.get(e.nodeId);
    if (!c) return;
    c.peer
      .request('stream.assign', { stream: e.stream, parent: e.parent, ticket: e.ticket })
      .catch((err) => c.log.warn({ err, streamId: e.stream.id }, 'relay did not take the assignment'));
  }

  async #onSilent(ws: WebSocket, silentMs: number): Promise<void> {
    const conn = this.#byWs.get(ws);
    if (!conn?.record || conn.status !== 'ready' || this.#relays.get(conn.record.id) !== conn) return;
    conn.log.warn({ silentMs }, 'relay not answering pings: no new traffic, children moved, until it answers');
    try {
      await this.#controller.suspectNode(conn.record.id);
    } catch (err) {
      conn.log.warn({ err }, 'cannot mark the silent relay now');
    }
  }

  async #onClose(conn: RelayConnection): Promise<void> {
    this.#stopProbe(conn);
    conn.untrackToken?.();
    const record = conn.record;
    if (!record || this.#relays.get(record.id) !== conn) return;
    this.#relays.delete(record.id);
    if (this.#closed) return; // we are the ones going away; the relay will come back elsewhere
    conn.log.info({}, 'relay disconnected');
    try {
      await this.#controller.nodeGone(record.id, 'control connection closed');
    } catch (err) {
      conn.log.warn({ err }, 'cannot remove relay now; its liveness will expire');
    }
  }
}
