/**
 * The ledger: one entry per account, an append-only history, and the counters credits are
 * computed from. Amounts are integers: points in micro-points (1e-6 point), bytes in bytes.
 *
 * How a volunteer earns (CreditService decides who earns and the caps; the store applies them
 * atomically):
 * - receivers confirm: viewers' receipts (viewerReceipt) and child relays' heartbeats
 *   (childConfirmation) add to the serving node's `confirmed` bytes;
 * - the node counts: its own running byte total (nodeCounts) adds to its `claimed` bytes;
 * - settle() credits the node's account with min(confirmed, claimed) minus what it already
 *   credited, so a node reporting more than its receivers confirm earns no more, and receivers
 *   confirming more than the node sent earn it no more either.
 */
export interface LedgerEntry {
  accountId: string;
  /** Micro-points earned relaying. */
  earned: number;
  /** Micro-points granted (the sign-up grant). */
  granted: number;
  /** Micro-points spent (watching). */
  spent: number;
  /** Bytes credited. */
  bytes: number;
  /** Viewer sessions that confirmed receiving from one of the account's relays. */
  viewersServed: number;
  /** Time the account's volunteer relays were alive, ms (sampled at each settlement). */
  onlineMs: number;
}

export const balanceOf = (e: Pick<LedgerEntry, 'earned' | 'granted' | 'spent'>): number => e.earned + e.granted - e.spent;

export interface LedgerHistoryEntry {
  at: number;
  kind: 'grant' | 'credit' | 'spend';
  /** Micro-points moved (always positive; `kind` says which way). */
  micro: number;
  /** Bytes credited (credits only, else 0). */
  bytes: number;
  /** The relay credited, the stream paid for, or 'signup'. */
  ref: string;
}

export interface DailyTotals {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  earned: number;
  spent: number;
  bytes: number;
}

/** Newest history entries kept per account (daily totals are kept whole). */
export const HISTORY_MAX = 2000;

export type ReceiptOutcome = 'counted' | 'capped' | 'duplicate' | 'unplaced';

export interface ViewerReceiptInput {
  /** The viewer's signalling session (no ':' in it). */
  session: string;
  /** Who the per-viewer cap applies to: the viewer's account id if signed in, else the session. */
  viewer: string;
  streamId: string;
  nodeId: string;
  seq: number;
  bytes: number;
  /** Most the receipt may count on its own (rate × its interval). */
  maxBytes: number;
  /** Account earning from nodeId, or null when it earns nothing (bookkeeping only). */
  accountId: string | null;
  now: number;
  /** Rate cap, bytes per ms, applied since the placement and since the viewer's first placement in the stream. */
  maxBytesPerMs: number;
  /** Slack added to elapsed time in the rate caps, ms. */
  graceMs: number;
  /** How long a placement with no receipt is remembered, ms. */
  ttlMs: number;
}

export interface ChildConfirmationInput {
  streamId: string;
  childId: string;
  parentId: string;
  /** The child's running total from the parent on its current pipe. */
  bytesFromParent: number;
  /** Account earning from parentId, or null. */
  accountId: string | null;
  now: number;
  maxBytesPerMs: number;
  graceMs: number;
  ttlMs: number;
}

export interface NodeCountInput {
  nodeId: string;
  accountId: string;
  /** The node's own running total of bytes sent (NodeStats.bytesOut): a smaller value means it restarted. */
  bytesOut: number;
  /** Alive now (its heartbeats have not expired): counts towards the account's time online. */
  alive: boolean;
}

export interface Settlement {
  nodeId: string;
  accountId: string;
  bytes: number;
  micro: number;
}

/**
 * Both implementations (MemoryLedgerStore, RedisLedgerStore) run one contract test suite. Every
 * method is one atomic operation (one Lua script on Redis), so receipts arriving through several
 * controller instances at once are each counted once, and a restart between two calls loses or
 * doubles nothing. Every method may reject with CASCADE_ERR_STORE_UNAVAILABLE.
 */
export interface LedgerStore {
  readonly kind: 'memory' | 'redis';

  /** Create the account's entry with `grantMicro` (and a history entry for it); false if it exists. */
  open(accountId: string, grantMicro: number, now: number): Promise<boolean>;
  get(accountId: string): Promise<LedgerEntry | undefined>;
  getMany(accountIds: string[]): Promise<LedgerEntry[]>;
  /** Newest first, at most `limit`. */
  history(accountId: string, limit: number): Promise<LedgerHistoryEntry[]>;
  /** Totals of the given UTC days (zeros where nothing happened), in the order given. */
  daily(accountId: string, days: string[]): Promise<DailyTotals[]>;

  /**
   * Charge `costMicro` once per account and stream: resolves charged false when this stream
   * was paid for already. Rejects CASCADE_ERR_CREDITS_INSUFFICIENT when the balance is short
   * (or the account has no entry).
   */
  chargeWatch(accountId: string, streamId: string, costMicro: number, now: number, day: string): Promise<{ charged: boolean; balance: number }>;

  /** The controller placed `session` on `nodeId` for `streamId`: receipts for that pair may count from now on. */
  bindViewer(b: { session: string; viewer: string; streamId: string; nodeId: string; now: number; ttlMs: number }): Promise<void>;
  /** One viewer receipt: see ViewerReceiptInput. `counted` is what was added to the node's confirmed bytes. */
  viewerReceipt(r: ViewerReceiptInput): Promise<{ outcome: ReceiptOutcome; counted: number }>;
  /** A child relay's running total from its parent (a decrease means a new pipe). */
  childConfirmation(c: ChildConfirmationInput): Promise<{ outcome: 'counted' | 'capped'; counted: number }>;
  /** Nodes' own running totals, and their time online (gaps over `maxGapMs` are not counted). */
  nodeCounts(reports: NodeCountInput[], now: number, maxGapMs: number): Promise<void>;
  /** Credit every node whose counters moved since the last settlement. */
  settle(now: number, day: string, microPerByte: number): Promise<Settlement[]>;

  close(): Promise<void>;
}

/** UTC day of a time, YYYY-MM-DD. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
