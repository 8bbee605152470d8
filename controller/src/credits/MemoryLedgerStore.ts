import { CascadeError } from '@cascade/protocol';
import {
  balanceOf,
  HISTORY_MAX,
  type ChildConfirmationInput,
  type DailyTotals,
  type LedgerEntry,
  type LedgerHistoryEntry,
  type LedgerStore,
  type NodeCountInput,
  type ReceiptOutcome,
  type Settlement,
  type ViewerReceiptInput,
} from './LedgerStore.js';

interface NodeCounters {
  account: string;
  confirmed: number;
  claimed: number;
  credited: number;
  lastBytesOut?: number;
  lastSeen?: number;
}
interface Expiring {
  expiresAt: number;
}
interface Binding extends Expiring {
  since: number;
  lastSeq: number;
  bytes: number;
  served: boolean;
}
interface ViewerStream extends Expiring {
  since: number;
  bytes: number;
}
interface Edge extends Expiring {
  since: number;
  at: number;
  last: number;
  bytes: number;
}

/**
 * The single-machine ledger, step for step what ledgerLua.ts does on Redis (the contract tests
 * run both). Lost with the process, like every in-process store.
 */
export class MemoryLedgerStore implements LedgerStore {
  readonly kind = 'memory' as const;
  readonly #entries = new Map<string, LedgerEntry>();
  readonly #history = new Map<string, LedgerHistoryEntry[]>();
  readonly #daily = new Map<string, Map<string, DailyTotals>>();
  readonly #watched = new Map<string, Set<string>>();
  readonly #nodes = new Map<string, NodeCounters>();
  readonly #pending = new Set<string>();
  readonly #bindings = new Map<string, Binding>();
  readonly #viewers = new Map<string, ViewerStream>();
  readonly #edges = new Map<string, Edge>();
  #writes = 0;
  #closed = false;

  async open(accountId: string, grantMicro: number, now: number): Promise<boolean> {
    this.#check();
    if (this.#entries.has(accountId)) return false;
    this.#entries.set(accountId, { accountId, earned: 0, granted: grantMicro, spent: 0, bytes: 0, viewersServed: 0, onlineMs: 0 });
    if (grantMicro > 0) this.#append(accountId, { at: now, kind: 'grant', micro: grantMicro, bytes: 0, ref: 'signup' });
    return true;
  }

  async get(accountId: string): Promise<LedgerEntry | undefined> {
    this.#check();
    const e = this.#entries.get(accountId);
    return e && { ...e };
  }

  async getMany(accountIds: string[]): Promise<LedgerEntry[]> {
    this.#check();
    return accountIds.flatMap((id) => {
      const e = this.#entries.get(id);
      return e ? [{ ...e }] : [];
    });
  }

  async history(accountId: string, limit: number): Promise<LedgerHistoryEntry[]> {
    this.#check();
    return (this.#history.get(accountId) ?? []).slice(-Math.max(0, limit)).reverse().map((h) => ({ ...h }));
  }

  async daily(accountId: string, days: string[]): Promise<DailyTotals[]> {
    this.#check();
    const d = this.#daily.get(accountId);
    return days.map((day) => ({ ...(d?.get(day) ?? { day, earned: 0, spent: 0, bytes: 0 }) }));
  }

  async chargeWatch(accountId: string, streamId: string, costMicro: number, now: number, day: string): Promise<{ charged: boolean; balance: number }> {
    this.#check();
    const e = this.#entries.get(accountId);
    if (!e) throw new CascadeError('CASCADE_ERR_CREDITS_INSUFFICIENT', 'no ledger entry');
    const watched = this.#watched.get(accountId) ?? new Set<string>();
    if (watched.has(streamId)) return { charged: false, balance: balanceOf(e) };
    if (balanceOf(e) < costMicro) throw new CascadeError('CASCADE_ERR_CREDITS_INSUFFICIENT', `balance ${balanceOf(e)} µpoints, cost ${costMicro}`);
    watched.add(streamId);
    this.#watched.set(accountId, watched);
    e.spent += costMicro;
    this.#day(accountId, day).spent += costMicro;
    this.#append(accountId, { at: now, kind: 'spend', micro: costMicro, bytes: 0, ref: streamId });
    return { charged: true, balance: balanceOf(e) };
  }

  async bindViewer(b: { session: string; viewer: string; streamId: string; nodeId: string; now: number; ttlMs: number }): Promise<void> {
    this.#check();
    this.#sweep(b.now);
    const expiresAt = b.now + b.ttlMs;
    const key = `${b.session}:${b.streamId}:${b.nodeId}`;
    const binding = this.#live(this.#bindings, key, b.now) ?? { since: b.now, lastSeq: 0, bytes: 0, served: false, expiresAt };
    binding.expiresAt = expiresAt;
    this.#bindings.set(key, binding);
    const vkey = `${b.viewer}:${b.streamId}`;
    const viewer = this.#live(this.#viewers, vkey, b.now) ?? { since: b.now, bytes: 0, expiresAt };
    viewer.expiresAt = expiresAt;
    this.#viewers.set(vkey, viewer);
  }

  async viewerReceipt(r: ViewerReceiptInput): Promise<{ outcome: ReceiptOutcome; counted: number }> {
    this.#check();
    const b = this.#live(this.#bindings, `${r.session}:${r.streamId}:${r.nodeId}`, r.now);
    if (!b) return { outcome: 'unplaced', counted: 0 };
    if (r.seq <= b.lastSeq) return { outcome: 'duplicate', counted: 0 };
    const vkey = `${r.viewer}:${r.streamId}`;
    const v = this.#live(this.#viewers, vkey, r.now) ?? { since: b.since, bytes: 0, expiresAt: 0 };
    const room = (since: number, used: number) => Math.floor(r.maxBytesPerMs * (r.now - since + r.graceMs)) - used;
    const counted = Math.max(0, Math.min(r.bytes, Math.floor(r.maxBytes), room(b.since, b.bytes), room(v.since, v.bytes)));
    b.lastSeq = r.seq;
    b.bytes += counted;
    b.expiresAt = r.now + r.ttlMs;
    v.bytes += counted;
    v.expiresAt = r.now + r.ttlMs;
    this.#viewers.set(vkey, v);
    if (counted > 0 && r.accountId !== null) {
      const n = this.#node(r.nodeId, r.accountId);
      n.confirmed += counted;
      this.#pending.add(r.nodeId);
      if (!b.served) {
        b.served = true;
        const e = this.#entries.get(r.accountId);
        if (e) e.viewersServed += 1;
      }
    }
    return { outcome: counted < r.bytes ? 'capped' : 'counted', counted };
  }

  async childConfirmation(c: ChildConfirmationInput): Promise<{ outcome: 'counted' | 'capped'; counted: number }> {
    this.#check();
    this.#sweep(c.now);
    const key = `${c.streamId}:${c.childId}:${c.parentId}`;
    const e = this.#live(this.#edges, key, c.now);
    // First sight: only what the parent could have sent within the grace counts.
    const edge = e ?? { since: c.now, at: c.now, last: 0, bytes: 0, expiresAt: 0 };
    const delta = c.bytesFromParent >= edge.last ? c.bytesFromParent - edge.last : c.bytesFromParent;
    const room = Math.min(
      Math.floor(c.maxBytesPerMs * (c.now - edge.at + c.graceMs)),
      Math.floor(c.maxBytesPerMs * (c.now - edge.since + c.graceMs)) - edge.bytes,
    );
    const counted = Math.max(0, Math.min(delta, room));
    edge.last = c.bytesFromParent;
    edge.at = c.now;
    edge.bytes += counted;
    edge.expiresAt = c.now + c.ttlMs;
    this.#edges.set(key, edge);
    if (counted > 0 && c.accountId !== null) {
      this.#node(c.parentId, c.accountId).confirmed += counted;
      this.#pending.add(c.parentId);
    }
    return { outcome: counted < delta ? 'capped' : 'counted', counted };
  }

  async nodeCounts(reports: NodeCountInput[], now: number, maxGapMs: number): Promise<void> {
    this.#check();
    for (const r of reports) {
      const n = this.#node(r.nodeId, r.accountId);
      const last = n.lastBytesOut ?? 0;
      const delta = r.bytesOut >= last ? r.bytesOut - last : r.bytesOut;
      n.lastBytesOut = r.bytesOut;
      if (delta > 0) {
        n.claimed += delta;
        this.#pending.add(r.nodeId);
      }
      if (r.alive) {
        const e = this.#entries.get(r.accountId);
        if (e && n.lastSeen !== undefined && now > n.lastSeen && now - n.lastSeen <= maxGapMs) e.onlineMs += now - n.lastSeen;
        if (n.lastSeen === undefined || now > n.lastSeen) n.lastSeen = now;
      } else {
        // Dead at this report: the time since its last live one was not spent online.
        delete n.lastSeen;
      }
    }
  }

  async settle(now: number, day: string, microPerByte: number): Promise<Settlement[]> {
    this.#check();
    const out: Settlement[] = [];
    for (const nodeId of this.#pending) {
      const n = this.#nodes.get(nodeId);
      const e = n && this.#entries.get(n.account);
      const delta = n ? Math.min(n.confirmed, n.claimed) - n.credited : 0;
      if (n && e && delta > 0) {
        const micro = Math.floor(delta * microPerByte + 0.5);
        n.credited += delta;
        e.earned += micro;
        e.bytes += delta;
        const d = this.#day(n.account, day);
        d.earned += micro;
        d.bytes += delta;
        this.#append(n.account, { at: now, kind: 'credit', micro, bytes: delta, ref: nodeId });
        out.push({ nodeId, accountId: n.account, bytes: delta, micro });
      }
    }
    this.#pending.clear();
    return out;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** The node's counters, started afresh when it now belongs to another account. */
  #node(nodeId: string, accountId: string): NodeCounters {
    let n = this.#nodes.get(nodeId);
    if (!n || n.account !== accountId) {
      n = { account: accountId, confirmed: 0, claimed: 0, credited: 0 };
      this.#nodes.set(nodeId, n);
    }
    return n;
  }

  #day(accountId: string, day: string): DailyTotals {
    const days = this.#daily.get(accountId) ?? new Map<string, DailyTotals>();
    this.#daily.set(accountId, days);
    const d = days.get(day) ?? { day, earned: 0, spent: 0, bytes: 0 };
    days.set(day, d);
    return d;
  }

  #append(accountId: string, h: LedgerHistoryEntry): void {
    const list = this.#history.get(accountId) ?? [];
    list.push(h);
    if (list.length > HISTORY_MAX) list.splice(0, list.length - HISTORY_MAX);
    this.#history.set(accountId, list);
  }

  #live<T extends Expiring>(map: Map<string, T>, key: string, now: number): T | undefined {
    const v = map.get(key);
    if (v && v.expiresAt <= now) {
      map.delete(key);
      return undefined;
    }
    return v;
  }

  /** Drop expired placements and edges now and then, so memory follows the live ones. */
  #sweep(now: number): void {
    if (++this.#writes % 1024 !== 0) return;
    for (const map of [this.#bindings, this.#viewers, this.#edges] as Map<string, Expiring>[]) {
      for (const [k, v] of map) if (v.expiresAt <= now) map.delete(k);
    }
  }

  #check(): void {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', 'store closed');
  }
}
