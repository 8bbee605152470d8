import { Redis } from 'ioredis';
import { CascadeError, isErrorCode, type Logger, type NodeStats } from '@cascade/protocol';
import type {
  NodeRecord,
  NodeSnapshot,
  NodeStatus,
  NodeView,
  PlacementPolicy,
  PlaceResult,
  StreamRecord,
  TopologyEvent,
  TreeEntry,
} from '../types.js';
import { KEYS, TOPOLOGY_LUA } from './redisScript.js';
import { redactUrl, RedisLink, storeError, subscriberOptions } from './redisLink.js';
import { NO_LIMIT } from './scores.js';
import type { TopologyStore, TopologyStoreOptions } from './TopologyStore.js';

type TicketKey = { privateKey: string; publicKey: string };

export interface RedisTopologyStoreOptions extends TopologyStoreOptions {
  url: string;
  /** ms before a command counts as failed. Default 2000. */
  commandTimeoutMs?: number;
  /**
   * ioredis auto-pipelining: commands asked for in one tick leave in one write. Default false:
   * measured no faster here (BENCHMARKS.md, placements in flight), where concurrent decisions
   * are already pipelined on the one connection and Redis's Lua work bounds the throughput.
   */
  autoPipelining?: boolean;
}

/**
 * The deployment store: state in Redis so that several controller instances share it.
 * Decisions run as one Lua script (atomic, one round trip); changes are published on
 * `cascade:events`. While Redis is unreachable every call fails fast with
 * CASCADE_ERR_STORE_UNAVAILABLE (no offline queue), and media already flowing is untouched.
 */
export class RedisTopologyStore implements TopologyStore {
  readonly kind = 'redis' as const;
  readonly #link: RedisLink;
  readonly #sub: Redis;
  readonly #log: Logger;
  readonly #handlers = new Set<(e: TopologyEvent) => void>();
  /** K for restored edges, NO_LIMIT for none (see TopologyStoreOptions). */
  readonly #maxChildren: number;
  /**
   * The ticket key this instance signs with, once it took it from Redis. Redis may lose it
   * (a restart without persistence, a flush) while this instance keeps signing: it writes it
   * back when it notices, so that an instance started later adopts it instead of making a
   * new one whose tickets relays verifying with this one's would refuse.
   */
  #ticketKey: TicketKey | undefined;

  static async connect(options: RedisTopologyStoreOptions, deps: { logger: Logger }): Promise<RedisTopologyStore> {
    const store = new RedisTopologyStore(options, deps.logger);
    try {
      await Promise.all([store.#link.connect(options.url), store.#sub.connect()]);
      await store.#sub.subscribe(KEYS.channel);
    } catch (err) {
      await store.close();
      throw err instanceof CascadeError ? err : new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', `cannot connect to ${redactUrl(options.url)}`, { cause: err });
    }
    return store;
  }

  private constructor(options: RedisTopologyStoreOptions, logger: Logger) {
    this.#log = logger.child({ component: 'RedisTopologyStore' });
    this.#maxChildren = options.maxChildren ?? NO_LIMIT;
    this.#link = new RedisLink(
      options.url,
      { name: 'cascadeTopology', lua: TOPOLOGY_LUA },
      {
        logger: this.#log,
        commandTimeoutMs: options.commandTimeoutMs,
        autoPipelining: options.autoPipelining,
        // Any reconnection may be to a Redis that restarted empty (a quick one raises no error).
        onReconnect: () => void this.#restoreTicketKey(),
      },
    );
    this.#sub = new Redis(options.url, subscriberOptions());
    this.#sub.on('error', () => {});
    this.#sub.on('message', (_channel: string, message: string) => {
      let event: TopologyEvent;
      try {
        event = JSON.parse(message) as TopologyEvent;
      } catch {
        return;
      }
      for (const h of this.#handlers) {
        try {
          h(event);
        } catch (err) {
          this.#log.error({ err }, 'topology event handler threw');
        }
      }
    });
  }

  // ------------------------------------------------------------------ nodes

  async upsertNode(node: NodeRecord, status: NodeStatus, ttlMs: number, now: number): Promise<void> {
    await this.#script('upsertNode', JSON.stringify(node), status, ttlMs, now);
  }

  async heartbeat(nodeId: string, snapshot: NodeSnapshot, ttlMs: number, now: number): Promise<boolean> {
    const known = (await this.#script('heartbeat', nodeId, JSON.stringify(snapshot), ttlMs, now, this.#maxChildren)) === 'OK';
    // The store lost this node, so maybe everything (a flush): the ticket key too.
    if (!known) await this.#restoreTicketKey();
    return known;
  }

  async setNodeStatus(nodeId: string, status: NodeStatus): Promise<void> {
    await this.#script('setStatus', nodeId, status);
  }

  async getNode(nodeId: string, now: number): Promise<NodeView | undefined> {
    return (await this.#views([nodeId], now))[0];
  }

  async listNodes(now: number): Promise<NodeView[]> {
    const ids = await this.#link.call(() => this.#link.redis.hkeys(KEYS.nodes));
    return this.#views(ids, now);
  }

  async expiredNodes(now: number): Promise<string[]> {
    return this.#link.call(() => this.#link.redis.zrangebyscore(KEYS.expiry, '-inf', now));
  }

  async removeNode(nodeId: string): Promise<{ orphans: { streamId: string; childId: string }[]; streams: string[] }> {
    const r = JSON.parse(String(await this.#script('removeNode', nodeId))) as { orphans: unknown; streams: unknown };
    // cjson encodes an empty Lua table as {} rather than [].
    return {
      orphans: Array.isArray(r.orphans) ? (r.orphans as { streamId: string; childId: string }[]) : [],
      streams: Array.isArray(r.streams) ? (r.streams as string[]) : [],
    };
  }

  // ------------------------------------------------------------------ streams

  async putStream(stream: StreamRecord): Promise<void> {
    await this.#script('putStream', JSON.stringify(stream));
  }

  async getStream(streamId: string): Promise<StreamRecord | undefined> {
    const raw = await this.#link.call(() => this.#link.redis.hget(KEYS.streams, streamId));
    return raw ? (JSON.parse(raw) as StreamRecord) : undefined;
  }

  async listStreams(): Promise<StreamRecord[]> {
    const all = await this.#link.call(() => this.#link.redis.hvals(KEYS.streams));
    return all.map((raw) => JSON.parse(raw) as StreamRecord);
  }

  async deleteStream(streamId: string): Promise<void> {
    await this.#script('deleteStream', streamId);
  }

  async getTree(streamId: string): Promise<TreeEntry[]> {
    const all = await this.#link.call(() => this.#link.redis.hvals(KEYS.tree(streamId)));
    return all.map((raw) => {
      const e = JSON.parse(raw) as TreeEntry;
      return { ...e, parent: e.parent ?? null };
    });
  }

  async nodeStreams(nodeId: string): Promise<string[]> {
    return this.#link.call(() => this.#link.redis.smembers(KEYS.nodeStreams(nodeId)));
  }

  // ------------------------------------------------------------------ decisions

  async placeViewer(streamId: string, policy: PlacementPolicy, exclude: string[]): Promise<PlaceResult> {
    const r = JSON.parse(String(await this.#script('place', streamId, policy.maxChildren, policy.now, JSON.stringify(exclude)))) as
      | PlaceResult
      | { err: string };
    if ('err' in r) throw new CascadeError(isErrorCode(r.err) ? r.err : 'CASCADE_ERR_INTERNAL', streamId);
    return r;
  }

  async releaseViewer(streamId: string, nodeId: string): Promise<void> {
    await this.#script('release', streamId, nodeId);
  }

  async reparent(
    streamId: string,
    childId: string,
    policy: PlacementPolicy,
    exclude: string[],
  ): Promise<{ parentId: string; depth: number } | null> {
    const r = JSON.parse(
      String(await this.#script('reparent', streamId, childId, policy.maxChildren, policy.now, JSON.stringify(exclude))),
    ) as { parentId?: string; depth?: number };
    return r.parentId !== undefined ? { parentId: r.parentId, depth: r.depth! } : null;
  }

  async detach(streamId: string, nodeId: string): Promise<boolean> {
    return Number(await this.#script('detach', streamId, nodeId)) === 1;
  }

  // ------------------------------------------------------------------ events, keys

  async publish(event: TopologyEvent): Promise<void> {
    await this.#link.call(() => this.#link.redis.publish(KEYS.channel, JSON.stringify(event)));
  }

  subscribe(handler: (event: TopologyEvent) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  async getOrCreateTicketKey(generate: () => TicketKey): Promise<TicketKey> {
    const fresh = generate();
    // One script: the first instance's pair wins whole when several start together.
    const [privateKey, publicKey] = (await this.#script('ticketKey', fresh.privateKey, fresh.publicKey)) as [string, string];
    this.#ticketKey = { privateKey, publicKey };
    return { privateKey, publicKey };
  }

  async close(): Promise<void> {
    // Idempotent as they are (a failed connect() has closed the link already, not the subscriber).
    this.#handlers.clear();
    this.#link.close();
    this.#sub.disconnect();
  }

  // ------------------------------------------------------------------ internals

  /** Two round trips however many nodes and streams: the records, then the tree entries that give each node's children. */
  async #views(ids: string[], now: number): Promise<NodeView[]> {
    if (ids.length === 0) return [];
    const pipe = this.#link.redis.pipeline();
    pipe.hmget(KEYS.nodes, ...ids);
    pipe.hmget(KEYS.status, ...ids);
    pipe.hmget(KEYS.viewers, ...ids);
    pipe.hmget(KEYS.stats, ...ids);
    for (const id of ids) pipe.zscore(KEYS.expiry, id);
    for (const id of ids) pipe.smembers(KEYS.nodeStreams(id));
    const res = await this.#link.call(() => pipe.exec());
    const reply = (i: number) => pipelineReply(res, i);
    const col = (i: number) => (reply(i) ?? []) as (string | null)[];
    const [nodes, statuses, viewers, stats] = [col(0), col(1), col(2), col(3)];
    const streamsOf = (i: number) => (reply(4 + ids.length + i) ?? []) as string[];

    // A node's children, all streams together: the sum over the tree entries it has.
    const entries: { i: number; streamId: string }[] = [];
    for (let i = 0; i < ids.length; i++) if (nodes[i]) for (const s of streamsOf(i)) entries.push({ i, streamId: s });
    const children = new Array<number>(ids.length).fill(0);
    if (entries.length > 0) {
      const treePipe = this.#link.redis.pipeline();
      for (const { i, streamId } of entries) treePipe.hget(KEYS.tree(streamId), ids[i]!);
      const trees = await this.#link.call(() => treePipe.exec());
      entries.forEach(({ i }, k) => {
        const raw = pipelineReply(trees, k);
        if (raw) children[i]! += (JSON.parse(raw as string) as TreeEntry).children;
      });
    }

    const out: NodeView[] = [];
    for (let i = 0; i < ids.length; i++) {
      const raw = nodes[i];
      if (!raw) continue;
      const expiresAt = Number(reply(4 + i) ?? 0);
      const node = JSON.parse(raw) as NodeRecord;
      out.push({
        ...node,
        status: (statuses[i] as NodeStatus | null) ?? 'probing',
        alive: expiresAt > now,
        expiresAt,
        load: { viewers: Number(viewers[i] ?? 0), children: children[i]! },
        ...(stats[i] ? { stats: JSON.parse(stats[i]!) as NodeStats } : {}),
      });
    }
    return out;
  }

  /** Write back the ticket key this instance holds where Redis has none (never over another). */
  async #restoreTicketKey(): Promise<void> {
    const mine = this.#ticketKey;
    if (!mine || this.#link.closed) return;
    try {
      const [privateKey] = (await this.#script('ticketKey', mine.privateKey, mine.publicKey)) as [string, string];
      if (privateKey !== mine.privateKey) {
        this.#log.error({}, 'the ticket key in redis is not the one this instance signs with: relays verifying with it refuse its tickets');
      }
    } catch (err) {
      this.#log.warn({ err }, 'cannot write the ticket key back to redis');
    }
  }

  #script(...args: (string | number)[]): Promise<unknown> {
    return this.#link.script(...args);
  }
}

/** The value of a pipeline's i-th command; an error reply there raises the store's coded error. */
function pipelineReply(res: [Error | null, unknown][] | null | undefined, i: number): unknown {
  const [err, value] = res?.[i] ?? [null, null];
  if (err) throw storeError(err);
  return value;
}

