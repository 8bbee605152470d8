import {
  CascadeError,
  isValid,
  TypedEmitter,
  ViewerReceipt,
  type CarriedStream,
  type ErrorCode,
  type Logger,
} from '@cascade/protocol';
import { foldName, type AccountStore } from '../accounts/AccountStore.js';
import type { TopologyStore } from '../store/TopologyStore.js';
import { systemClock, type Clock } from '../clock.js';
import type { NodeRecord } from '../types.js';
import type { LedgerStore, NodeCountInput, ReceiptOutcome, Settlement } from './LedgerStore.js';
import { utcDay } from './LedgerStore.js';
import { SampledLog } from './SampledLog.js';

export interface CreditServiceOptions {
  /** Points per GB (1e9 bytes) confirmed. Default 1. */
  pointsPerGB: number;
  /** Points charged once per account per stream watched; 0: free (and anonymous watching allowed). */
  watchCost: number;
  /** Most a viewer can receive of one stream, kbit/s. */
  maxStreamKbps: number;
  /** Period of viewers' receipts, ms. */
  receiptIntervalMs: number;
  /** Period of settlements (confirmed bytes turned into points), ms. */
  settleIntervalMs: number;
}

export interface CreditServiceDeps {
  ledger: LedgerStore;
  topology: TopologyStore;
  accounts: AccountStore;
  logger: Logger;
  clock?: Clock;
}

export type CreditServiceObserverEvents = {
  /** A receipt was handled: what came of it and the bytes it added to a node's confirmed total. */
  receipt: [outcome: ReceiptOutcome | 'invalid' | 'notearning', countedBytes: number];
  /** A node's account was credited at a settlement. */
  credit: [settlement: Settlement];
  /** An account paid to watch a stream. */
  charge: [accountId: string, streamId: string, micro: number];
  close: [];
  listenererror: [event: string, error: unknown];
};

/** What came of one receipt: bytes it added to the node's confirmed total, and why not all, if not. */
export interface ReceiptResult {
  counted: number;
  code?: ErrorCode;
}

/** Session ids name store keys (`…:<session>:<stream>:<node>`): no ':' in them. */
const SESSION_ID = /^[A-Za-z0-9_.-]{1,128}$/;
/** No RTP packet carries more (an MTU), so a receipt claiming more bytes per packet is impossible. */
const MAX_PACKET_BYTES = 1500;
/** How long a placement, a viewer's per-stream total and a pipe edge are remembered after their last use. */
const MEMORY_MS = 30 * 60_000;
/** How long a node's earner (its owner's account) is cached. */
const EARNER_CACHE_MS = 5000;

/**
 * Credits volunteers for what their receivers confirm (issue 16): viewers' receipts and child
 * relays' heartbeats raise a node's confirmed bytes, its own running total its claimed bytes,
 * and every settlement credits its owner's account with min(confirmed, claimed) at
 * `pointsPerGB`. Only volunteer relays whose owner (the relay token's subject) is an account
 * earn; the origin and dedicated relays never do. Caps: a receipt counts at most the stream's
 * rate × its interval, and per placement and per viewer per stream at most the rate × the time
 * since the placement; receipts from viewers not placed on that node, and receipts already
 * counted (sequence numbers, kept in the store), count nothing.
 *
 * Wiring (the origin's viewer connections): call viewerPlaced() when a viewer session is served
 * or redirected, receipt() for each `viewer.receipt`, childReport() with relays' heartbeats,
 * chargeWatch() before a signed-in viewer is served. start() runs the settlements.
 */
export class CreditService {
  readonly observer = new TypedEmitter<CreditServiceObserverEvents>();
  readonly options: CreditServiceOptions;
  readonly #ledger: LedgerStore;
  readonly #topology: TopologyStore;
  readonly #accounts: AccountStore;
  readonly #log: Logger;
  readonly #refusals: SampledLog;
  readonly #clock: Clock;
  readonly #earners = new Map<string, { accountId: string | null; at: number }>();
  readonly #parents = new Map<string, { parents: Map<string, string | null>; at: number }>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #settling = false;
  #closed = false;

  constructor(options: CreditServiceOptions, deps: CreditServiceDeps) {
    this.options = options;
    this.#ledger = deps.ledger;
    this.#topology = deps.topology;
    this.#accounts = deps.accounts;
    this.#log = deps.logger.child({ component: 'CreditService' });
    this.#refusals = new SampledLog(this.#log, 10_000);
    this.#clock = deps.clock ?? systemClock;
  }

  get ledger(): LedgerStore {
    return this.#ledger;
  }

  /** Bytes per ms a viewer may receive of one stream. */
  get maxBytesPerMs(): number {
    return this.options.maxStreamKbps / 8;
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => void this.settle().catch((err) => this.#log.warn({ err }, 'settlement failed; retried next period')), this.options.settleIntervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.observer.safeEmit('close');
  }

  // ------------------------------------------------------------------ viewers

  /**
   * The controller placed viewer session `session` on `nodeId` for `streamId` (served there or
   * redirected there): receipts of that session for that node count from now on. `viewer` is
   * whom the per-viewer cap applies to: the viewer's account id when signed in, else the session.
   */
  async viewerPlaced(p: { session: string; streamId: string; nodeId: string; viewer?: string }): Promise<void> {
    if (!SESSION_ID.test(p.session) || (p.viewer !== undefined && !SESSION_ID.test(p.viewer))) throw new TypeError('session and viewer ids are 1-128 of A-Z a-z 0-9 _ . -');
    await this.#ledger.bindViewer({ session: p.session, viewer: p.viewer ?? p.session, streamId: p.streamId, nodeId: p.nodeId, now: this.#clock.now(), ttlMs: MEMORY_MS });
  }

  /**
   * One receipt of viewer session `session` (received over its signalling connection). Never
   * throws for what the viewer sent: the result says what counted and, when not everything did,
   * the code why (CREDITS_RECEIPT_INVALID, _DUPLICATE, _UNPLACED, _CAPPED), with a sampled
   * warn line. Rejects only with CASCADE_ERR_STORE_UNAVAILABLE (nothing was counted: the same
   * receipt may be sent again). `streamKbps`, when the caller knows the stream's measured rate, tightens the cap
   * (never beyond credits.maxStreamKbps).
   */
  async receipt(session: string, receipt: unknown, opts: { viewer?: string; streamKbps?: number } = {}): Promise<ReceiptResult> {
    if (!SESSION_ID.test(session) || !isValid(ViewerReceipt, receipt) || (opts.viewer !== undefined && !SESSION_ID.test(opts.viewer))) {
      return this.#refused('CASCADE_ERR_CREDITS_RECEIPT_INVALID', 'invalid', { session }, 'receipt refused: malformed');
    }
    const r = receipt;
    if (r.bytes > r.packets * MAX_PACKET_BYTES) {
      return this.#refused('CASCADE_ERR_CREDITS_RECEIPT_INVALID', 'invalid', { session, nodeId: r.nodeId, bytes: r.bytes, packets: r.packets }, 'receipt refused: more bytes than its packets can carry');
    }
    const accountId = await this.#earner(r.nodeId);
    const rate = this.#rate(opts.streamKbps);
    // The receipt's own interval counts up to two periods (a late timer), never more.
    const intervalMs = Math.min(r.intervalMs, 2 * this.options.receiptIntervalMs);
    const { outcome, counted } = await this.#ledger.viewerReceipt({
      session,
      viewer: opts.viewer ?? session,
      streamId: r.streamId,
      nodeId: r.nodeId,
      seq: r.seq,
      bytes: r.bytes,
      maxBytes: rate * intervalMs,
      accountId,
      now: this.#clock.now(),
      maxBytesPerMs: rate,
      graceMs: 2 * this.options.receiptIntervalMs,
      ttlMs: MEMORY_MS,
    });
    const where = { session, nodeId: r.nodeId, streamId: r.streamId, seq: r.seq, bytes: r.bytes, counted };
    if (outcome === 'unplaced') return this.#refused('CASCADE_ERR_CREDITS_RECEIPT_UNPLACED', outcome, where, 'receipt refused: viewer not placed on that node');
    if (outcome === 'duplicate') return this.#refused('CASCADE_ERR_CREDITS_RECEIPT_DUPLICATE', outcome, where, 'receipt refused: already counted');
    if (outcome === 'capped') {
      this.observer.safeEmit('receipt', outcome, counted);
      this.#refusals.warn('CASCADE_ERR_CREDITS_RECEIPT_CAPPED', where, 'receipt capped: more than the stream could deliver');
      return { counted, code: 'CASCADE_ERR_CREDITS_RECEIPT_CAPPED' };
    }
    this.observer.safeEmit('receipt', accountId === null ? 'notearning' : outcome, counted);
    return { counted };
  }

  // ------------------------------------------------------------------ relays

  /**
   * A relay's heartbeat streams: each one it pulls from a parent, with `bytesFromParent`,
   * confirms what that parent sent it. Counted only where the tree says that parent feeds it.
   */
  async childReport(child: Pick<NodeRecord, 'id'>, streams: CarriedStream[]): Promise<void> {
    const now = this.#clock.now();
    for (const s of streams) {
      if (s.parentNodeId === null || s.bytesFromParent === undefined) continue;
      if ((await this.#treeParent(s.streamId, child.id, now)) !== s.parentNodeId) {
        this.#refusals.warn('childReport:notEdge', { childId: child.id, parentId: s.parentNodeId, streamId: s.streamId }, 'child confirmation ignored: that parent does not feed it in the tree');
        continue;
      }
      const accountId = await this.#earner(s.parentNodeId);
      const r = await this.#ledger.childConfirmation({
        streamId: s.streamId,
        childId: child.id,
        parentId: s.parentNodeId,
        bytesFromParent: s.bytesFromParent,
        accountId,
        now,
        maxBytesPerMs: this.maxBytesPerMs,
        graceMs: 2 * this.options.receiptIntervalMs,
        ttlMs: MEMORY_MS,
      });
      if (r.outcome === 'capped') this.#refusals.warn('CASCADE_ERR_CREDITS_RECEIPT_CAPPED:child', { childId: child.id, parentId: s.parentNodeId, counted: r.counted }, 'child confirmation capped: more than the stream could deliver');
    }
  }

  /**
   * One settlement: volunteer relays' own running totals (their last heartbeat's bytesOut) and
   * time online, then every node whose counters moved is credited min(confirmed, claimed).
   * Safe on several instances at once: totals are running counters, each step atomic.
   */
  async settle(): Promise<Settlement[]> {
    if (this.#settling || this.#closed) return [];
    this.#settling = true;
    try {
      const now = this.#clock.now();
      const reports: NodeCountInput[] = [];
      for (const n of await this.#topology.listNodes(now)) {
        if (n.kind !== 'relay' || !n.volunteer || !n.stats) continue;
        const accountId = await this.#earner(n.id, n);
        if (accountId) reports.push({ nodeId: n.id, accountId, bytesOut: n.stats.bytesOut, alive: n.alive });
      }
      await this.#ledger.nodeCounts(reports, now, 2 * this.options.settleIntervalMs);
      const done = await this.#ledger.settle(now, utcDay(now), this.options.pointsPerGB / 1000);
      for (const s of done) {
        this.#log.info({ ...s, points: s.micro / 1e6 }, 'volunteer credited');
        this.observer.safeEmit('credit', s);
      }
      return done;
    } finally {
      this.#settling = false;
    }
  }

  // ------------------------------------------------------------------ spending

  /**
   * Charge `credits.watchCost` for `accountId` watching `streamId`, once per account and
   * stream. Free (and open to anonymous viewers) when the cost is 0. Rejects
   * CASCADE_ERR_ACCOUNT_SIGNED_OUT for an anonymous viewer when watching costs something, and
   * CASCADE_ERR_CREDITS_INSUFFICIENT when the balance is short.
   */
  async chargeWatch(accountId: string | undefined, streamId: string): Promise<{ charged: boolean; balance?: number }> {
    const micro = Math.round(this.options.watchCost * 1e6);
    if (micro <= 0) return { charged: false };
    if (!accountId) throw new CascadeError('CASCADE_ERR_ACCOUNT_SIGNED_OUT', `watching costs ${this.options.watchCost} points: sign in`);
    const now = this.#clock.now();
    const r = await this.#ledger.chargeWatch(accountId, streamId, micro, now, utcDay(now));
    if (r.charged) this.observer.safeEmit('charge', accountId, streamId, micro);
    return r;
  }

  // ------------------------------------------------------------------ internals

  /** The account a node earns for: a live volunteer relay whose owner is an account; else null. */
  async #earner(nodeId: string, known?: NodeRecord): Promise<string | null> {
    const now = this.#clock.now();
    const cached = this.#earners.get(nodeId);
    if (cached && now - cached.at < EARNER_CACHE_MS) return cached.accountId;
    const node = known ?? (await this.#topology.getNode(nodeId, now));
    const account = node && node.kind === 'relay' && node.volunteer ? await this.#accounts.findAccount(foldName(node.owner)) : undefined;
    const accountId = account?.id ?? null;
    if (this.#earners.size > 10_000) this.#earners.clear();
    this.#earners.set(nodeId, { accountId, at: now });
    return accountId;
  }

  /** The parent the tree gives `childId` in `streamId` (trees read at most every two seconds per stream). */
  async #treeParent(streamId: string, childId: string, now: number): Promise<string | null | undefined> {
    let t = this.#parents.get(streamId);
    if (!t || now - t.at > 2000) {
      t = { parents: new Map((await this.#topology.getTree(streamId)).map((e) => [e.nodeId, e.parent])), at: now };
      if (this.#parents.size > 1000) this.#parents.clear();
      this.#parents.set(streamId, t);
    }
    return t.parents.get(childId);
  }

  #rate(streamKbps: number | undefined): number {
    const kbps = streamKbps !== undefined && streamKbps > 0 ? Math.min(this.options.maxStreamKbps, streamKbps * 1.25) : this.options.maxStreamKbps;
    return kbps / 8;
  }

  #refused(code: ErrorCode, outcome: ReceiptOutcome | 'invalid', obj: Record<string, unknown>, msg: string): ReceiptResult {
    this.observer.safeEmit('receipt', outcome, 0);
    this.#refusals.warn(code, obj, msg);
    return { counted: 0, code };
  }
}
