import {
  CascadeError,
  KeyedTokenBucket,
  TypedEmitter,
  type Logger,
  type HeartbeatAnswer,
  type NodeCapacity,
  type Placement,
  type StreamInfo,
} from '@cascade/protocol';
import { generateTicketKey, TicketSigner } from './auth/TicketSigner.js';
import type { TokenService } from './auth/TokenService.js';
import type { TopologyStore } from './store/TopologyStore.js';
import { StrayPipes } from './StrayPipes.js';
import { NodeHealth, checkFigures } from './NodeHealth.js';
import { systemClock, type Clock } from './clock.js';
import { IntegrityJudge } from './integrity/IntegrityJudge.js';
import { Reparenter, streamInfo } from './Reparenter.js';
import { StreamRecords } from './StreamRecords.js';
import type { TopologyControllerDeps, TopologyControllerEvents, TopologyControllerObserverEvents, TopologyControllerOptions, TopologyNode } from './TopologyControllerTypes.js';
import type { NodeRecord, NodeSnapshot, NodeStatus, NodeView, StreamRecord, TopologyEvent } from './types.js';

export { systemClock, type Clock } from './clock.js';
export type { AssignEvent, CondemnEvent, TopologyControllerDeps, TopologyControllerEvents, TopologyControllerObserverEvents, TopologyControllerOptions, TopologyNode } from './TopologyControllerTypes.js';

/** How long the controller remembers that a node left demoted or draining (ms). */
const GONE_STATUS_MEMORY_MS = 10 * 60_000;

/** How old a pipe ticket may be and still vouch for an edge a relay reports (s): a day of streaming. */
const EDGE_TICKET_MAX_AGE_SEC = 24 * 3600;
/** How long a parent may keep feeding a relay moved away from it before it is told to stop (ms). */
const STRAY_PIPE_GRACE_MS = 10_000;

/** After the origin found a relay clean, more reports about it are not probed again for this long (ms). */
const INTEGRITY_COOLDOWN_MS = 30_000;

/**
 * Decides the distribution tree of every stream: which node serves a joining viewer, which
 * parent feeds each relay, what happens when a node dies, drains or struggles. State lives in
 * the TopologyStore, so several controllers may run side by side; each decision is one atomic
 * store operation, and assignments are published so that whichever instance holds the relay's
 * connection delivers them.
 *
 * (Over 400 lines: every decision about the tree is here, each a short method over the store, so
 * that the order of events a node goes through reads in one place; the policies with state of
 * their own live apart: NodeHealth, StrayPipes, Reparenter (moving children), the stores' placement;
 * so do the stream-record queries and retention (StreamRecords) and the types (TopologyControllerTypes).)
 */
export class TopologyController extends TypedEmitter<TopologyControllerEvents> {
  readonly observer = new TypedEmitter<TopologyControllerObserverEvents>();
  readonly store: TopologyStore;
  readonly tickets: TicketSigner;
  readonly options: TopologyControllerOptions;
  readonly #log: Logger;
  readonly #tokens: TokenService | undefined;
  readonly #clock: Clock;
  readonly #unsubscribe: () => void;
  readonly #health: NodeHealth;
  /**
   * The last status this instance gave each node it registered. The store is the truth, but
   * when it lost everything (Redis restarted empty) this is what the node is re-created with:
   * its holder's cached view can be stale (a relay demoted since it answered its probe).
   */
  readonly #statuses = new Map<string, NodeStatus>();
  /**
   * Nodes gone while demoted or draining, and until when that is remembered: a relay that
   * reconnects (or restarts under the same id) takes that status back, not a fresh 'ready'.
   */
  readonly #goneStatuses = new Map<string, { status: NodeStatus; until: number }>();
  /** Moves relays to new parents and tells them; keeps orphans for the sweeper to retry. */
  readonly #reparenter: Reparenter;
  readonly #strays: StrayPipes;
  readonly #streams: StreamRecords;
  readonly #parentLostBudget = new KeyedTokenBucket({ burst: 3, refillMs: 2000, maxKeys: 100_000 });
  /** Relays condemned for altering or withholding media (never restored; learned from every instance). */
  readonly #condemned = new Set<string>();
  /** Viewers' integrity reports, confirmed by the stream's origin before a relay is touched. */
  readonly integrity: IntegrityJudge;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #sweeping = false;
  /**
   * Since when the store has answered every sweep. Heartbeats that could not be written while
   * it was away (a Redis restart, one that kept its data on disk included) make every node look
   * expired: no node is declared dead before the store has been back for a full node TTL.
   */
  #storeUpSince: number;
  #closed = false;

  static async create(options: TopologyControllerOptions, deps: TopologyControllerDeps): Promise<TopologyController> {
    const key = deps.ticketKey ?? (await deps.store.getOrCreateTicketKey(generateTicketKey));
    return new TopologyController(options, deps, new TicketSigner(key, options.ticketTtlSec));
  }

  private constructor(options: TopologyControllerOptions, deps: TopologyControllerDeps, tickets: TicketSigner) {
    super();
    this.options = options;
    this.store = deps.store;
    this.tickets = tickets;
    this.#log = deps.logger.child({ component: 'TopologyController' });
    this.#tokens = deps.tokens;
    this.#clock = deps.clock ?? systemClock;
    this.#storeUpSince = this.#clock.now();
    this.#health = new NodeHealth(options, { store: this.store, clock: this.#clock });
    // Longer than any make-before-break move takes to close its old pipe.
    this.#strays = new StrayPipes({ graceMs: Math.max(STRAY_PIPE_GRACE_MS, 4 * options.heartbeatIntervalMs) });
    this.#streams = new StreamRecords(options, { store: this.store, clock: this.#clock });
    this.#reparenter = new Reparenter(options, { store: this.store, tickets, logger: this.#log, clock: this.#clock, onReparent: (...a) => this.observer.safeEmit('reparent', ...a) });
    if (options.watchTokenRequired && !deps.tokens) throw new TypeError('watchTokenRequired needs a TokenService');
    this.#unsubscribe = this.store.subscribe((e) => this.#onEvent(e));
    this.integrity = new IntegrityJudge(
      { cooldownMs: INTEGRITY_COOLDOWN_MS },
      { store: this.store, tickets, logger: deps.logger, now: () => this.#clock.now(), condemn: (nodeId, why) => this.condemnNode(nodeId, why) },
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Start sweeping dead nodes and ended streams. */
  start(sweepIntervalMs = Math.max(100, Math.floor(this.options.nodeTtlMs / 4))): void {
    if (this.#sweeper || this.#closed) return;
    this.#sweeper = setInterval(() => void this.sweep(), sweepIntervalMs);
    this.#sweeper.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#unsubscribe();
    this.#reparenter.clear();
    this.observer.safeEmit('close');
  }

  // ------------------------------------------------------------------ nodes

  /**
   * What a relay may take: its declared limits, but no more copies of a stream (viewers plus
   * child relays) than its declared upload carries at `viewerKbps` each.
   */
  relayCapacity(declared: NodeCapacity): NodeCapacity {
    const { viewerKbps } = this.options;
    if (declared.upKbps <= 0 || viewerKbps <= 0) return declared;
    const copies = Math.floor(declared.upKbps / viewerKbps);
    const maxChildren = Math.min(declared.maxChildren, copies);
    return { ...declared, maxChildren, maxViewers: Math.min(declared.maxViewers, copies - maxChildren) };
  }

  async registerNode(record: NodeRecord, status: NodeStatus): Promise<void> {
    await this.store.upsertNode(record, status, this.options.nodeTtlMs, this.#clock.now());
    this.#statuses.set(record.id, status);
    this.#log.info({ nodeId: record.id, kind: record.kind, volunteer: record.volunteer, status }, 'node registered');
  }

  /** The status a node that registers again takes back once checked: demoted or draining if it left so lately. */
  async resumeStatus(nodeId: string): Promise<NodeStatus | undefined> {
    const live = await this.store.getNode(nodeId, this.#clock.now());
    if (live?.alive && (live.status === 'demoted' || live.status === 'draining')) return live.status;
    const gone = this.#goneStatuses.get(nodeId);
    return gone && gone.until >= this.#clock.now() ? gone.status : undefined;
  }

  async setNodeStatus(nodeId: string, status: NodeStatus): Promise<void> {
    await this.store.setNodeStatus(nodeId, status);
    this.#statuses.set(nodeId, status);
  }

  /**
   * A heartbeat from a node. Impossible figures are refused (CASCADE_ERR_RELAY_INVALID_STATS)
   * and the last good ones kept. If the store lost the node it is re-created with the status
   * this instance last gave it; `status` (what the node's holder believes) only for a node this
   * instance never saw.
   */
  async nodeHeartbeat(record: NodeRecord, status: NodeStatus, reported: NodeSnapshot): Promise<HeartbeatAnswer> {
    checkFigures(record, reported);
    const now = this.#clock.now();
    // A parent a relay names counts (to restore an edge the store lost) only with the pipe ticket
    // this controller signed for it: two colluding relays cannot make up an edge between them.
    const snapshot: NodeSnapshot = {
      stats: reported.stats,
      streams: reported.streams.map(({ pipeTicket, ...s }) =>
        s.parentNodeId !== null && (record.kind !== 'relay' || !pipeTicket || !this.tickets.vouchesForEdge(pipeTicket, { stream: s.streamId, parent: s.parentNodeId, child: record.id }, now, EDGE_TICKET_MAX_AGE_SEC))
          ? { ...s, parentNodeId: null }
          : s,
      ),
    };
    if (!(await this.store.heartbeat(record.id, snapshot, this.options.nodeTtlMs, now))) {
      const known = this.#statuses.get(record.id) ?? status;
      this.#log.warn({ nodeId: record.id, status: known }, 'store lost this node; registering it again');
      await this.store.upsertNode(record, known, this.options.nodeTtlMs, now);
      await this.store.heartbeat(record.id, snapshot, this.options.nodeTtlMs, now);
    }
    if (record.kind === 'relay') await this.#checkHealth(record, snapshot);
    // Pipes to relays moved elsewhere a while ago are closed by their parent (the tree decides, not the child).
    const settled = now - this.#storeUpSince >= this.options.nodeTtlMs;
    const dropChildren = await this.#strays.check(record.id, snapshot, (id) => this.store.getTree(id), now, settled);
    if (dropChildren.length > 0) this.#log.warn({ nodeId: record.id, dropChildren }, 'parent still feeds relays moved away from it: told to close those pipes');
    return dropChildren.length > 0 ? { dropChildren } : {};
  }

  /** A node is gone (connection lost, liveness expired, or it left): its children get new parents. */
  async nodeGone(nodeId: string, reason: string): Promise<void> {
    const status = (await this.store.getNode(nodeId, this.#clock.now()).catch(() => undefined))?.status ?? this.#statuses.get(nodeId);
    const { orphans, streams } = await this.store.removeNode(nodeId);
    this.#health.forget(nodeId);
    this.#statuses.delete(nodeId);
    this.#strays.forget(nodeId);
    const now = this.#clock.now();
    for (const [id, g] of this.#goneStatuses) if (g.until < now) this.#goneStatuses.delete(id);
    if (status === 'demoted' || status === 'draining') this.#goneStatuses.set(nodeId, { status, until: now + GONE_STATUS_MEMORY_MS });
    if (streams.length === 0 && orphans.length === 0) return;
    this.#log.warn({ nodeId, reason, streams: streams.length, orphans: orphans.length }, 'node gone');
    this.observer.safeEmit('nodegone', nodeId);
    await this.store.publish({ type: 'nodegone', nodeId }).catch(() => {});
    await Promise.all(orphans.map((o) => this.#reparenter.adopt(o.streamId, o.childId, [nodeId])));
  }

  /**
   * A relay that stopped answering without closing (frozen, cut off, or a link stalling): it
   * gets no new traffic and its children move (make-before-break: a live pipe stays until they
   * switch). If it is dead its heartbeats expire and nodeGone() follows; if it answers again,
   * healthy heartbeats restore it like a demoted relay.
   */
  async suspectNode(nodeId: string): Promise<void> {
    const view = await this.store.getNode(nodeId, this.#clock.now());
    if (!view || view.status !== 'ready') return;
    this.#health.restartRun(nodeId);
    await this.setNodeStatus(nodeId, 'demoted');
    await this.#reparenter.moveChildren(nodeId);
  }

  /**
   * A relay the stream's origin caught altering or withholding media: demoted for good (healthy
   * heartbeats do not restore it, nor does registering again, which its revoked token cannot),
   * children moved make-before-break; every instance learns it, and the one holding the relay's
   * connection revokes its token and tells its viewers to move.
   */
  async condemnNode(nodeId: string, why: { streamId: string; code: string; detail: string }): Promise<void> {
    this.#condemned.add(nodeId);
    this.#health.restartRun(nodeId);
    this.#log.warn({ nodeId, ...why }, 'relay condemned: demoted, children moved, token to be revoked');
    await this.setNodeStatus(nodeId, 'demoted');
    await this.#reparenter.moveChildren(nodeId);
    await this.store.publish({ type: 'condemn', nodeId, streamId: why.streamId, code: why.code });
  }

  /** Whether a relay was condemned (see condemnNode). */
  isCondemned(nodeId: string): boolean {
    return this.#condemned.has(nodeId);
  }

  /** Planned departure: no new traffic, children moved (make-before-break: the old pipe stays until the child switches). */
  async drainNode(nodeId: string): Promise<void> {
    await this.setNodeStatus(nodeId, 'draining');
    await this.#reparenter.moveChildren(nodeId);
    this.#log.info({ nodeId }, 'node draining');
  }

  /** A node as the store has it (alive or not), or undefined. */
  async getNode(nodeId: string): Promise<NodeView | undefined> {
    return this.store.getNode(nodeId, this.#clock.now());
  }

  async listNodes(): Promise<NodeView[]> {
    return this.store.listNodes(this.#clock.now());
  }

  /** How often nodes heartbeat, and how long a silent one stays alive (ms): what relays are told to follow. */
  get heartbeatIntervalMs(): number {
    return this.options.heartbeatIntervalMs;
  }
  get nodeTtlMs(): number {
    return this.options.nodeTtlMs;
  }

  /** PEM public key that verifies placement and pipe tickets (handed to relays). */
  get ticketPublicKey(): string {
    return this.tickets.publicKey;
  }

  // ------------------------------------------------------------------ streams

  async putStream(stream: StreamRecord): Promise<void> {
    await this.store.putStream(stream);
  }

  /** The stream, or STREAM_NOT_FOUND. */
  async getStream(streamId: string): Promise<StreamRecord> {
    return this.#streams.get(streamId);
  }

  /** Every stream record the store has (an origin adopts the ones it left behind). */
  async listStreamRecords(): Promise<StreamRecord[]> {
    return this.store.listStreams();
  }

  /**
   * Streams with their audience. Only streams that are not ended have their tree read (an
   * ended one has no viewers), so the cost follows the live streams, which origins bound.
   */
  async listStreams(options: { ended?: boolean } = {}): Promise<(StreamRecord & { viewers: number })[]> {
    return this.#streams.listWithViewers(options);
  }

  /** One stream and its audience over every node, or undefined. */
  async streamWithViewers(streamId: string): Promise<{ stream: StreamRecord; viewers: number } | undefined> {
    return this.#streams.withViewers(streamId);
  }

  async viewerCount(streamId: string): Promise<number> {
    return this.#streams.viewerCount(streamId);
  }

  /** Every node carrying the stream, for the topology API and the dashboard. */
  async topology(streamId: string): Promise<TopologyNode[]> {
    return this.#streams.topology(streamId);
  }

  // ------------------------------------------------------------------ viewers and relays

  /** Where a viewer goes, with a ticket for that node. */
  async placeViewer(request: { streamId: string; exclude?: string[]; token?: string }): Promise<{ placement: Placement; stream: StreamInfo; integrityKey?: string }> {
    if (this.options.watchTokenRequired) {
      const claims = this.#tokens!.verify(request.token, 'watch');
      if (claims.stream && claims.stream !== request.streamId) {
        throw new CascadeError('CASCADE_ERR_AUTH_FORBIDDEN', 'watch token is for another stream');
      }
    }
    // One atomic store operation decides (and returns what the answer needs).
    const now = this.#clock.now();
    const res = await this.store.placeViewer(request.streamId, { maxChildren: this.options.maxChildren, now }, request.exclude ?? []);
    const stream = res.stream;
    if (res.attached) {
      const a = res.attached;
      await this.#reparenter.publishAssign(stream, a.nodeId, a.parentId, a.childIp);
    }
    this.observer.safeEmit('placement', stream.id, res.nodeId, !!res.attached);
    return {
      placement: { nodeId: res.nodeId, ticket: this.tickets.viewer({ stream: stream.id, node: res.nodeId }) },
      stream: streamInfo(stream),
      ...(stream.integrityKey ? { integrityKey: stream.integrityKey } : {}),
    };
  }

  /** A viewer's account of what it received from `nodeId` over one interval (its receipt). */
  viewerReport(session: string, nodeId: string, report: { packets: number; lost?: number }): void {
    this.#health.viewerReport(session, nodeId, report);
  }

  async viewerLeft(nodeId: string, streamId: string): Promise<void> {
    await this.store.releaseViewer(streamId, nodeId);
  }

  /**
   * A relay's batch of departures for one stream. The store takes one write per departure, and
   * placements never put more viewers on a node than its capacity: departures beyond that would
   * be no-ops, so they cost nothing here (a count a heartbeat raised, heartbeats lower again).
   */
  async viewersLeft(record: NodeRecord, streamId: string, count: number): Promise<void> {
    const n = Math.min(count, record.capacity.maxViewers);
    for (let i = 0; i < n; i++) await this.store.releaseViewer(streamId, record.id);
  }

  /** A relay lost its parent for a stream (pipe closed or stalled): find it another. */
  async parentLost(childId: string, streamId: string, parentId: string): Promise<void> {
    // Each report may hand out a fresh pipe ticket: a relay gets a few at once (a new parent can
    // fail too), then one every few seconds, whatever it claims.
    if (!this.#parentLostBudget.take(`${childId}/${streamId}`, this.#clock.now())) {
      throw new CascadeError('CASCADE_ERR_PROTOCOL_RATE_LIMITED', `parent losses of ${streamId} reported too often`);
    }
    this.#strays.condemn(parentId, streamId, childId);
    await this.#reparenter.parentLost(childId, streamId, parentId);
  }

  /** A relay stopped carrying a stream (no viewers or children for a while). */
  async streamReleased(nodeId: string, streamId: string): Promise<boolean> {
    return this.store.detach(streamId, nodeId);
  }

  // ------------------------------------------------------------------ upkeep

  /** One sweep: expire dead nodes, retry orphans, forget streams ended long ago. */
  async sweep(): Promise<void> {
    if (this.#sweeping || this.#closed) return;
    this.#sweeping = true;
    try {
      const now = this.#clock.now();
      const expired = await this.store.expiredNodes(now);
      if (this.#storeUpSince === Number.POSITIVE_INFINITY) {
        this.#storeUpSince = now;
        this.#log.info({ graceMs: this.options.nodeTtlMs }, 'store answers again; nodes get a full TTL to heartbeat before any is declared gone');
      }
      if (now - this.#storeUpSince >= this.options.nodeTtlMs) {
        for (const id of expired) await this.nodeGone(id, 'heartbeats stopped');
      }
      await this.#reparenter.retryPending();
      await this.#streams.pruneEnded(now);
    } catch (err) {
      this.#log.warn({ err }, 'sweep failed');
      this.#storeUpSince = Number.POSITIVE_INFINITY;
    } finally {
      this.#sweeping = false;
    }
  }

  /** Demote a relay that delivers badly, restore one that recovered (NodeHealth judges). */
  async #checkHealth(record: NodeRecord, snapshot: NodeSnapshot): Promise<void> {
    const verdict = await this.#health.verdict(record, snapshot);
    if (!verdict) return;
    const view = await this.store.getNode(record.id, this.#clock.now());
    if (!view) return;
    if (verdict === 'demote' && view.status === 'ready') {
      const { cpu, lossRate, bitrateOutKbps } = snapshot.stats;
      this.#log.warn({ nodeId: record.id, cpu, lossRate, bitrateOutKbps, upKbps: record.capacity.upKbps }, 'relay demoted');
      await this.setNodeStatus(record.id, 'demoted');
      await this.#reparenter.moveChildren(record.id);
    } else if (verdict === 'restore' && view.status === 'demoted' && !this.#condemned.has(record.id)) {
      this.#log.info({ nodeId: record.id }, 'relay healthy again');
      await this.setNodeStatus(record.id, 'ready');
    }
  }

  #onEvent(e: TopologyEvent): void {
    switch (e.type) {
      case 'assign':
        this.safeEmit('assign', e);
        break;
      case 'nodegone':
        this.safeEmit('nodegone', e.nodeId);
        break;
      case 'condemn':
        this.#condemned.add(e.nodeId);
        this.safeEmit('condemn', e);
        break;
    }
  }
}
