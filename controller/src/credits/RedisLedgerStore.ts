import { CascadeError, type Logger } from '@cascade/protocol';
import { RedisLink } from '../store/redisLink.js';
import { LEDGER_KEYS as K, LEDGER_LUA } from './ledgerLua.js';
import {
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

export interface RedisLedgerStoreOptions {
  url: string;
  /** ms before a command counts as failed. Default 2000. */
  commandTimeoutMs?: number;
}

const ENTRY_FIELDS = ['earned', 'granted', 'spent', 'bytes', 'viewersServed', 'onlineMs'] as const;

/** The deployment ledger, in Redis (ledgerLua.ts lists its keys). */
export class RedisLedgerStore implements LedgerStore {
  readonly kind = 'redis' as const;
  readonly #link: RedisLink;

  static async connect(options: RedisLedgerStoreOptions, deps: { logger: Logger }): Promise<RedisLedgerStore> {
    const store = new RedisLedgerStore(options, deps.logger);
    await store.#link.connect(options.url);
    return store;
  }

  private constructor(options: RedisLedgerStoreOptions, logger: Logger) {
    this.#link = new RedisLink(
      options.url,
      { name: 'cascadeLedger', lua: LEDGER_LUA },
      { logger: logger.child({ component: 'RedisLedgerStore' }), ...(options.commandTimeoutMs ? { commandTimeoutMs: options.commandTimeoutMs } : {}) },
    );
  }

  async open(accountId: string, grantMicro: number, now: number): Promise<boolean> {
    return Number(await this.#link.script('open', accountId, Math.floor(grantMicro), now, HISTORY_MAX)) === 1;
  }

  async get(accountId: string): Promise<LedgerEntry | undefined> {
    return (await this.getMany([accountId]))[0];
  }

  async getMany(accountIds: string[]): Promise<LedgerEntry[]> {
    if (accountIds.length === 0) return [];
    const pipe = this.#link.redis.pipeline();
    for (const id of accountIds) pipe.hmget(K.ledger(id), ...ENTRY_FIELDS);
    const res = await this.#link.call(() => pipe.exec());
    const out: LedgerEntry[] = [];
    accountIds.forEach((accountId, i) => {
      const [err, values] = res?.[i] ?? [null, null];
      if (err) throw new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', err.message, { cause: err });
      const v = values as (string | null)[];
      if (v.every((x) => x === null)) return;
      const n = (j: number) => Number(v[j] ?? 0);
      out.push({ accountId, earned: n(0), granted: n(1), spent: n(2), bytes: n(3), viewersServed: n(4), onlineMs: n(5) });
    });
    return out;
  }

  async history(accountId: string, limit: number): Promise<LedgerHistoryEntry[]> {
    if (limit <= 0) return [];
    const raws = await this.#link.call(() => this.#link.redis.lrange(K.history(accountId), -limit, -1));
    return raws.map((r) => JSON.parse(r) as LedgerHistoryEntry).reverse();
  }

  async daily(accountId: string, days: string[]): Promise<DailyTotals[]> {
    if (days.length === 0) return [];
    const fields = days.flatMap((d) => [`${d}:earned`, `${d}:spent`, `${d}:bytes`]);
    const v = await this.#link.call(() => this.#link.redis.hmget(K.daily(accountId), ...fields));
    return days.map((day, i) => ({ day, earned: Number(v[3 * i] ?? 0), spent: Number(v[3 * i + 1] ?? 0), bytes: Number(v[3 * i + 2] ?? 0) }));
  }

  async chargeWatch(accountId: string, streamId: string, costMicro: number, now: number, day: string): Promise<{ charged: boolean; balance: number }> {
    const [status, balance] = (await this.#link.script('charge', accountId, streamId, Math.floor(costMicro), now, day, HISTORY_MAX)) as [string, string | number];
    if (status === 'INSUFFICIENT') throw new CascadeError('CASCADE_ERR_CREDITS_INSUFFICIENT', `balance ${balance} µpoints, cost ${Math.floor(costMicro)}`);
    return { charged: status === 'CHARGED', balance: Number(balance) };
  }

  async bindViewer(b: { session: string; viewer: string; streamId: string; nodeId: string; now: number; ttlMs: number }): Promise<void> {
    await this.#link.script('bind', b.session, b.viewer, b.streamId, b.nodeId, b.now, Math.max(1, Math.floor(b.ttlMs)));
  }

  async viewerReceipt(r: ViewerReceiptInput): Promise<{ outcome: ReceiptOutcome; counted: number }> {
    const [outcome, counted] = (await this.#link.script(
      'receipt',
      r.session,
      r.viewer,
      r.streamId,
      r.nodeId,
      r.seq,
      r.bytes,
      Math.floor(r.maxBytes),
      r.accountId ?? '',
      r.now,
      r.maxBytesPerMs,
      r.graceMs,
      Math.max(1, Math.floor(r.ttlMs)),
    )) as [ReceiptOutcome, string | number];
    return { outcome, counted: Number(counted) };
  }

  async childConfirmation(c: ChildConfirmationInput): Promise<{ outcome: 'counted' | 'capped'; counted: number }> {
    const [outcome, counted] = (await this.#link.script(
      'child',
      c.streamId,
      c.childId,
      c.parentId,
      c.bytesFromParent,
      c.accountId ?? '',
      c.now,
      c.maxBytesPerMs,
      c.graceMs,
      Math.max(1, Math.floor(c.ttlMs)),
    )) as ['counted' | 'capped', string | number];
    return { outcome, counted: Number(counted) };
  }

  async nodeCounts(reports: NodeCountInput[], now: number, maxGapMs: number): Promise<void> {
    if (reports.length === 0) return;
    await this.#link.script('counts', JSON.stringify(reports), now, maxGapMs);
  }

  async settle(now: number, day: string, microPerByte: number): Promise<Settlement[]> {
    const raw = String(await this.#link.script('settle', now, day, microPerByte, HISTORY_MAX));
    const out = JSON.parse(raw) as unknown;
    // cjson encodes an empty Lua table as {} rather than [].
    return Array.isArray(out) ? (out as Settlement[]) : [];
  }

  async close(): Promise<void> {
    this.#link.close();
  }
}
