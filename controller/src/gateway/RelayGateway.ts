import { createHash, randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  CascadeError,
  ControlNotifications,
  LogBudget,
  ControlRequests,
  Peer,
  RelayRequests,
  webSocketChannel,
  toCascadeError,
  type ControlNotificationType,
  type ControlParams,
  type Logger,
  type MessageChannel,
} from '@cascade/protocol';
import { relayIdFor, WsEndpoint, type UpgradeRouter } from '@cascade/protocol/node';
import type { RelayTokens } from '../auth/RelayTokens.js';
import type { CreditService } from '../credits/CreditService.js';
import type { TokenService } from '../auth/TokenService.js';
import type { AssignEvent, CondemnEvent, TopologyController } from '../TopologyController.js';
import type { TunnelRouter, NodeLink } from '../tunnels/TunnelRouter.js';
import { MAX_REFUSED_PER_SWEEP } from '../tunnels/TunnelRouter.js';
import { systemClock, type Clock } from '../clock.js';
import type { NodeRecord } from '../types.js';
import { clientAddress } from './addresses.js';
import { checkDeclaredCapacity, checkMediaAddress, type AddressPolicy } from './admission.js';
import { NodeAdmission } from './NodeAdmission.js';
import type { ControlPeer, NodeConnection } from './NodeConnection.js';

export interface RelayGatewayOptions {
  /** Ping period of node connections. */
  pingIntervalMs: number;
  /**
   * A node silent (no pong) this long gets no new traffic, its children are moved and the
   * viewers it serves are told to move; it is restored once it answers again, ms.
   */
  suspectAfterMs: number;
  /** A node silent this long is cut off (its heartbeats have expired by then), ms. */
  deadAfterMs: number;
  maxConnections: number;
  maxMessageBytes: number;
  rateLimitPerSec: number;
  requestTimeoutMs: number;
  probeTimeoutMs: number;
  /** A connection that has not registered by then is closed, ms. */
  registerTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Which media addresses relays may announce. */
  addressPolicy: AddressPolicy;
  /** Proxies whose X-Forwarded-For names the real peer. */
  trustProxy: readonly string[];
  /** Upload test at admission, at most this (kbit/s); 0: none. */
  uploadTestMaxKbps: number;
}

/** How long an origin may take to probe a relay and answer (ms). */
const PROBE_TIMEOUT_MS = 15_000;

/** A parent unheard this long when its child reports its media stopped is gone (ms; pings go every heartbeat/4). */
const PARENT_SILENT_MS = 300;
/** Otherwise it must answer a ping sent on the child's report within this time (ms). */
const PARENT_PROBE_MS = 150;

/** Sessions a node may host before its message budget stops growing. */
const MAX_BUDGETED_TUNNELS = 10_000;

/**
 * The controller's `/control` endpoint for media nodes: relays (volunteers included,
 * untrusted) and origins that have no controller of their own. Token check, media address
 * policy, reachability checks of the one port viewers use and of the pipe ports, an upload test,
 * heartbeats, assignments decided by any controller instance, and the tunnels that carry
 * viewers' and child relays' sessions to the node. Nothing but registration is served before
 * the checks pass (NodeAdmission), except the tunnels a node brings back from an earlier connection.
 *
 * (Over 400 lines: the /control request table, one handler per request type with the guard it
 * needs, reads best in one place beside the connection state it serves.)
 */
export class RelayGateway {
  readonly #controller: TopologyController;
  readonly #tokens: TokenService;
  readonly #relayTokens: RelayTokens | undefined;
  readonly #credits: CreditService | undefined;
  readonly #router: TunnelRouter;
  readonly #options: RelayGatewayOptions;
  readonly #log: Logger;
  readonly #endpoint: WsEndpoint;
  readonly #nodes = new Map<string, NodeConnection>();
  readonly #byWs = new WeakMap<WebSocket, NodeConnection>();
  /** A connection's WebSocket, to ping it (one attached on another channel has none). */
  readonly #wsOf = new WeakMap<NodeConnection, WebSocket>();
  readonly #admission: NodeAdmission;
  readonly #clock: Clock;
  readonly #budgetTimer: ReturnType<typeof setInterval>;
  /** Refusals a node can cause are logged a few per second and code, all nodes together (a flood must not flood the log). */
  readonly #refusalLog = new LogBudget(5);
  #closed = false;

  constructor(
    upgrades: UpgradeRouter,
    options: RelayGatewayOptions,
    deps: {
      controller: TopologyController;
      tokens: TokenService;
      router: TunnelRouter;
      logger: Logger;
      relayTokens?: RelayTokens;
      credits?: CreditService;
      /** Registration times and the endpoint's ping liveness; its timers (pings, registration deadline) are the platform's. */
      clock?: Clock;
    },
  ) {
    this.#controller = deps.controller;
    this.#tokens = deps.tokens;
    this.#relayTokens = deps.relayTokens;
    this.#credits = deps.credits;
    this.#router = deps.router;
    this.#options = options;
    this.#log = deps.logger.child({ component: 'RelayGateway' });
    this.#clock = deps.clock ?? systemClock;
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
      { logger: this.#log, clock: this.#clock },
    );
    this.#endpoint.on('connection', (ws, req) => {
      const conn = this.#attach(webSocketChannel(ws), clientAddress(req, options.trustProxy));
      this.#byWs.set(ws, conn);
      this.#wsOf.set(conn, ws);
    });
    this.#endpoint.on('silent', (ws, silentMs) => void this.#onSilent(ws, silentMs));
    this.#admission = new NodeAdmission(upgrades, { probeTimeoutMs: options.probeTimeoutMs, uploadTestMaxKbps: options.uploadTestMaxKbps }, { controller: this.#controller, logger: this.#log });
    this.#controller.on('assign', (e) => this.#deliverAssign(e));
    this.#controller.on('condemn', (e) => void this.#condemn(e));
    this.#router.on('refused', (nodeId, _id, count) => {
      if (count !== MAX_REFUSED_PER_SWEEP) return;
      const conn = this.#nodes.get(nodeId);
      conn?.log.warn({ count }, 'node floods frames for sessions it does not hold: cut off');
      conn?.peer.closeWithError(new CascadeError('CASCADE_ERR_PROTOCOL_RATE_LIMITED', 'frames for sessions this node does not hold'));
    });
    // A node's message budget grows with the sessions it carries (each viewer pings a few times a second).
    this.#budgetTimer = setInterval(() => {
      for (const conn of this.#nodes.values()) {
        const tunnels = Math.min(MAX_BUDGETED_TUNNELS, this.#router.hostedCount(conn.record!.id));
        conn.peer.setRateLimit(options.rateLimitPerSec + tunnels * 10);
      }
    }, 1000);
    this.#budgetTimer.unref();
  }

  get relayCount(): number {
    return this.#nodes.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#budgetTimer);
    // Nodes keep their media and their tunnels; they reconnect to another controller instance.
    await this.#endpoint.close(1012, 'controller restarting');
    this.#admission.close();
  }

  /**
   * Serve a node's control connection on `channel` (a WebSocket to /control; tests give an
   * in-process channel). `observedIp` is the address it connects from.
   */
  attach(channel: MessageChannel, observedIp: string): void {
    this.#attach(channel, observedIp);
  }

  #attach(channel: MessageChannel, observedIp: string): NodeConnection {
    const o = this.#options;
    const peer: ControlPeer = new Peer({
      channel,
      inbound: ControlRequests,
      outbound: RelayRequests,
      notifications: ControlNotifications,
      maxMessageBytes: o.maxMessageBytes,
      rateLimitPerSec: o.rateLimitPerSec,
      requestTimeoutMs: o.requestTimeoutMs,
    });
    const conn: NodeConnection = { peer, observedIp, log: this.#log.child({ connId: randomBytes(4).toString('hex') }), status: 'probing' };
    conn.registerTimer = setTimeout(() => {
      conn.log.warn({ observedIp }, 'connection did not register in time: closed');
      peer.closeWithError(new CascadeError('CASCADE_ERR_RELAY_NOT_REGISTERED', `register within ${o.registerTimeoutMs} ms`));
    }, o.registerTimeoutMs);
    conn.registerTimer.unref();
    peer.on('protocolerror', (err, type) => {
      const suppressed = this.#refusalLog.take(err.code);
      if (suppressed !== undefined) conn.log.warn({ code: err.code, type, nodeId: conn.record?.id, suppressed }, 'bad control message');
    });
    peer.on('handled', (type, _ms, err) => {
      if (!err) return;
      if (err.code === 'CASCADE_ERR_INTERNAL') return conn.log.error({ type, code: err.code, err: err.cause }, 'control request failed');
      const suppressed = this.#refusalLog.take(err.code);
      if (suppressed !== undefined) conn.log.info({ type, code: err.code, suppressed }, 'control request refused');
    });
    peer.on('close', () => void this.#onClose(conn));
    peer.onNotification('tunnel.open', (d) =>
      this.#fromTunnel(conn, 'tunnel.open', d.id, (nodeId) => {
        if (conn.status === 'probing') throw new CascadeError('CASCADE_ERR_RELAY_NOT_REGISTERED', 'not checked yet');
        this.#router.fromNode(nodeId, { op: 'open', id: d.id, to: d.to });
      }),
    );
    peer.onNotification('tunnel.data', (d) => this.#fromTunnel(conn, 'tunnel.data', d.id, (nodeId) => this.#router.fromNode(nodeId, { op: 'data', id: d.id, data: d.data })));
    peer.onNotification('tunnel.close', (d) =>
      this.#fromTunnel(conn, 'tunnel.close', d.id, (nodeId) => this.#router.fromNode(nodeId, { op: 'close', id: d.id, code: d.code, reason: d.reason })),
    );

    const registered = (): NodeRecord => {
      if (!conn.record) throw new CascadeError('CASCADE_ERR_RELAY_NOT_REGISTERED', 'send node.register first');
      return conn.record;
    };
    /** Traffic (placements, departures, tree changes) only once the checks passed. */
    const admitted = (): NodeRecord => {
      const record = registered();
      if (conn.status === 'probing') throw new CascadeError('CASCADE_ERR_RELAY_NOT_REGISTERED', 'not checked yet: wait for node.ready');
      return record;
    };
    const origin = (): NodeRecord => {
      const record = admitted();
      if (record.kind !== 'origin') throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'only an origin may do this');
      return record;
    };
    peer
      .handle('node.register', (p) => this.#register(conn, p))
      .handle('node.probeAck', async ({ nonce }) => {
        registered();
        // A stale nonce (from an earlier connection of this relay) is refused but not fatal.
        if (!conn.nonce || nonce !== conn.nonce) throw new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', 'not the current probe nonce');
        conn.nonce = undefined;
        conn.stopProbe?.();
        return {};
      })
      .handle('node.heartbeat', async (p) => {
        const record = registered();
        const answer = await this.#controller.nodeHeartbeat(record, conn.status, p);
        await this.#router.refreshNode(record.id);
        // A child relay's word on what its parent sent (credited to the parent's volunteer, along tree edges only).
        if (record.kind === 'relay') await this.#credits?.childReport(record, p.streams).catch((err) => conn.log.warn({ err }, 'child confirmation not recorded'));
        return answer;
      })
      .handle('viewer.place', (p) => {
        origin();
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
        await this.#controller.parentLost(admitted().id, streamId, parentNodeId);
        return {};
      })
      .handle('stream.parentSilent', async ({ streamId, parentNodeId }) => ({ gone: await this.#parentSilent(admitted(), streamId, parentNodeId) }))
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
      .handle('stream.put', async ({ stream }) => {
        const record = origin();
        if (stream.originNodeId !== record.id) throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'a stream of another origin');
        await this.#controller.putStream(stream);
        return {};
      })
      // Relay tokens are short-lived: renewed over this connection, refused once revoked.
      .handle('node.renewToken', () => {
        if (registered().kind !== 'relay') throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'only relay tokens are renewed here');
        if (!this.#relayTokens || !conn.claims) throw new CascadeError('CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE', 'token renewal is not enabled');
        return this.#relayTokens.renew(conn.claims);
      })
      .handle('stream.get', async ({ streamId }) => {
        // Relays too: a child checks with the controller before it believes a parent that says the stream ended.
        admitted();
        const found = await this.#controller.streamWithViewers(streamId);
        return found ? { stream: found.stream, viewers: found.viewers } : { viewers: 0 };
      })
      .handle('stream.list', async () => {
        origin();
        return { streams: await this.#controller.listStreamRecords() };
      })
      // A viewer's integrity report, from the origin it talks to; confirmed before anything happens.
      .handle('viewer.integrity', async (p) => {
        const record = origin();
        void this.#controller.integrity.report(p, { session: record.id });
        return {};
      });
    return conn;
  }

  async #register(conn: NodeConnection, p: ControlParams<'node.register'>) {
    if (conn.record) throw new CascadeError('CASCADE_ERR_RELAY_ALREADY_REGISTERED', conn.record.id);
    const claims = this.#tokens.verifyAny(p.token, ['relay', 'origin']);
    const kind = claims.scope.includes('origin') ? 'origin' : 'relay';
    checkDeclaredCapacity(p.node.capacity, kind);
    const mediaIp = checkMediaAddress(p.node.mediaIp, conn.observedIp, kind === 'origin' ? 'any' : this.#options.addressPolicy);
    const nodeId = p.node.id ?? relayIdFor(claims.sub);
    const tokenHash = createHash('sha256').update(p.token).digest('base64url').slice(0, 22);
    const now = this.#clock.now();
    const existing = await this.#controller.getNode(nodeId);
    if (existing && existing.owner !== claims.sub && existing.alive) {
      throw new CascadeError('CASCADE_ERR_RELAY_ALREADY_REGISTERED', `${nodeId} belongs to another relay`);
    }
    // One live registration per token: a second relay on the same token (a copy of it) is refused.
    const twin = (await this.#controller.listNodes()).find((n) => n.alive && n.id !== nodeId && n.token === tokenHash);
    if (twin) throw new CascadeError('CASCADE_ERR_RELAY_ALREADY_REGISTERED', `this token already runs ${twin.id}`);
    const previous = this.#nodes.get(nodeId);
    if (previous && previous !== conn) {
      // The same node reconnecting (its old connection is not dead yet): the newest wins.
      previous.log.info({ nodeId }, 'replaced by a newer connection of the same node');
      this.#nodes.delete(nodeId);
      if (previous.link) this.#router.detachNode(nodeId, previous.link, false);
      previous.peer.close(4409, 'replaced by a newer connection');
    }
    const record: NodeRecord = {
      id: nodeId,
      kind,
      volunteer: kind === 'relay' && claims.volunteer === true,
      owner: claims.sub,
      url: '',
      mediaIp,
      mediaPort: p.node.mediaPort,
      token: tokenHash,
      capacity: kind === 'relay' ? this.#controller.relayCapacity(p.node.capacity) : p.node.capacity,
      registeredAt: now,
    };
    clearTimeout(conn.registerTimer);
    conn.record = record;
    conn.declared = p.node.capacity;
    conn.tokenHash = tokenHash;
    conn.log = conn.log.child({ nodeId });
    // A relay the controller had demoted or that was draining stays so: reconnecting is no way back in.
    conn.resumeStatus = await this.#controller.resumeStatus(nodeId);
    this.#nodes.set(nodeId, conn);
    // A revoked token drains this node, then cuts it off.
    conn.claims = claims;
    if (kind === 'relay') {
      conn.untrackToken = this.#relayTokens?.track(claims, {
        nodeId,
        drain: async () => {
          // A condemned relay stays demoted (what /status shows); its children moved already.
          if (conn.condemned) return;
          conn.status = 'draining';
          await this.#controller.drainNode(nodeId);
        },
        close: (err) => conn.peer.closeWithError(err),
      });
    }
    await this.#controller.registerNode(record, 'probing');
    const link: NodeLink = { deliver: (msg) => this.#deliverTunnel(conn, msg) };
    conn.link = link;
    await this.#router.attachNode(nodeId, link, p.tunnels ?? []);
    if (p.streams.length > 0) {
      // A node that already carries streams (the controller or Redis restarted): rebuild from it.
      await this.#controller.nodeHeartbeat(record, 'probing', {
        stats: { viewers: p.streams.reduce((n, s) => n + s.viewers, 0), children: p.streams.reduce((n, s) => n + s.children, 0), bitrateInKbps: 0, bitrateOutKbps: 0, lossRate: 0, cpu: 0, bytesOut: 0 },
        streams: p.streams,
      });
    }
    void this.#admit(conn, record, p);
    conn.log.info({ kind, volunteer: record.volunteer, mediaIp, mediaPort: p.node.mediaPort, observedIp: conn.observedIp, capacity: record.capacity, carried: p.streams.length, tunnels: p.tunnels?.length ?? 0 }, kind === 'relay' ? 'relay registered' : 'origin registered');
    return {
      nodeId,
      ticketPublicKey: this.#controller.ticketPublicKey,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs,
      nodeTtlMs: this.#controller.nodeTtlMs,
    };
  }

  /** Admission, then traffic: the node is ready (or keeps the status it had) once it passed. */
  async #admit(conn: NodeConnection, record: NodeRecord, p: ControlParams<'node.register'>): Promise<void> {
    const passed = await this.#admission.check(conn, record, p, () => !conn.peer.closed && this.#nodes.get(record.id) === conn);
    if (!passed) return;
    conn.status = conn.resumeStatus ?? 'ready';
    await this.#controller.setNodeStatus(record.id, conn.status).catch((err) => conn.log.warn({ err }, 'cannot store the status now'));
    if (record.kind === 'origin') {
      // Probes of relays suspected of altering this origin's streams run on it.
      conn.withdrawProber = this.#controller.integrity.registerProber(record.id, (p) => conn.peer.request('integrity.probe', p, { timeoutMs: PROBE_TIMEOUT_MS }));
    }
    conn.peer.notify('node.ready', { nodeId: record.id });
    conn.log.info({ status: conn.status, capacity: record.capacity }, 'node checked: reachable');
  }

  /** A registered node's tunnel frame, passed on by `pass`; a refused one closes that tunnel (unless it was the close). */
  #fromTunnel(conn: NodeConnection, type: ControlNotificationType, tunnel: string, pass: (nodeId: string) => void): void {
    const record = conn.record;
    if (!record) return;
    try {
      pass(record.id);
    } catch (err) {
      const e = toCascadeError(err);
      const suppressed = this.#refusalLog.take(e.code);
      if (suppressed !== undefined) conn.log.warn({ code: e.code, type, tunnel, suppressed }, 'tunnel frame refused');
      if (type !== 'tunnel.close') conn.peer.notify('tunnel.close', { id: tunnel, code: e.closeCode, reason: e.code });
    }
  }

  #deliverTunnel(conn: NodeConnection, msg: Parameters<NodeLink['deliver']>[0]): void {
    switch (msg.op) {
      case 'open':
        conn.peer.notify('tunnel.open', { id: msg.id, from: msg.from, ...(msg.remoteAddress ? { remoteAddress: msg.remoteAddress.slice(0, 64) } : {}) });
        break;
      case 'data':
        conn.peer.notify('tunnel.data', { id: msg.id, data: msg.data ?? '' });
        break;
      case 'close':
        conn.peer.notify('tunnel.close', { id: msg.id, code: msg.code ?? 1000, reason: (msg.reason ?? '').slice(0, 200) });
        break;
      case 'notice':
        break;
    }
  }

  #deliverAssign(e: AssignEvent): void {
    const c = this.#nodes.get(e.nodeId);
    if (!c) return;
    c.peer
      .request('stream.assign', { stream: e.stream, parent: { nodeId: e.parent.nodeId }, ticket: e.ticket })
      .catch((err) => c.log.warn({ err, streamId: e.stream.id }, 'relay did not take the assignment'));
  }

  /**
   * A child's pipe from `parentId` went quiet. A parent that answers neither its child (no
   * media) nor us (no pong for PARENT_SILENT_MS, or none to a ping sent now) is frozen or cut
   * off: declared gone at once, so that its children and viewers find other nodes within a
   * second instead of waiting for its heartbeats to expire. One that answers is left alone
   * (the stream itself may be pausing). A parent held by another controller instance is that
   * instance's to judge (by its pings); false here.
   */
  async #parentSilent(child: NodeRecord, streamId: string, parentId: string): Promise<boolean> {
    const parent = this.#nodes.get(parentId);
    const ws = parent && this.#wsOf.get(parent);
    if (!parent?.record || !ws || parent.record.kind !== 'relay' || parent.peer.closed) return false;
    const tree = await this.#controller.topology(streamId);
    if (tree.find((n) => n.id === child.id)?.parent !== parentId) return false;
    const silent = this.#endpoint.silentFor(ws);
    if (silent < PARENT_SILENT_MS && (await this.#endpoint.probe(ws, PARENT_PROBE_MS))) return false;
    if (this.#nodes.get(parentId) !== parent) return false;
    parent.log.warn({ streamId, childId: child.id, silentMs: this.#endpoint.silentFor(ws) }, 'relay silent and its child lost its media: declared gone');
    this.#router.nodeSilent(parentId);
    await this.#controller.nodeGone(parentId, 'silent, and its child relay lost its media');
    return true;
  }

  /** A relay connected here was caught: its token is revoked (drained, then cut off) and its viewers told to move now. */
  async #condemn(e: CondemnEvent): Promise<void> {
    const conn = this.#nodes.get(e.nodeId);
    if (!conn || conn.condemned) return;
    conn.condemned = true;
    conn.status = 'demoted';
    this.#router.nodeSilent(e.nodeId, 'condemned');
    conn.log.warn({ streamId: e.streamId, code: e.code, tokenId: conn.claims?.jti }, 'relay caught altering or withholding media: token revoked, viewers moved');
    if (conn.claims && this.#relayTokens) await this.#relayTokens.revoke(conn.claims.jti).catch((err) => conn.log.error({ err }, 'cannot revoke the relay token'));
    else conn.peer.closeWithError(new CascadeError('CASCADE_ERR_INTEGRITY_CONFIRMED', e.code));
  }

  async #onSilent(ws: WebSocket, silentMs: number): Promise<void> {
    const conn = this.#byWs.get(ws);
    if (!conn?.record || this.#nodes.get(conn.record.id) !== conn) return;
    conn.log.warn({ silentMs }, 'node not answering pings: its viewers move, no new traffic, children moved, until it answers');
    this.#router.nodeSilent(conn.record.id);
    if (conn.status !== 'ready') return;
    try {
      await this.#controller.suspectNode(conn.record.id);
    } catch (err) {
      conn.log.warn({ err }, 'cannot mark the silent relay now');
    }
  }

  async #onClose(conn: NodeConnection): Promise<void> {
    clearTimeout(conn.registerTimer);
    conn.untrackToken?.();
    conn.withdrawProber?.();
    conn.stopProbe?.();
    const record = conn.record;
    if (!record || this.#nodes.get(record.id) !== conn) return;
    this.#nodes.delete(record.id);
    // We are the ones going away: the node keeps its tunnels and brings them to another instance.
    if (conn.link) this.#router.detachNode(record.id, conn.link, !this.#closed);
    if (this.#closed) return;
    conn.log.info({}, 'node disconnected');
    try {
      await this.#controller.nodeGone(record.id, 'control connection closed');
    } catch (err) {
      conn.log.warn({ err }, 'cannot remove node now; its liveness will expire');
    }
  }
}
