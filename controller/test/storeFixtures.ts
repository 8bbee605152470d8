import { Redis } from 'ioredis';
import { CascadeError, silentLogger, type CarriedStream, type ErrorCode, type NodeStats } from '@cascade/protocol';
import { expect } from 'vitest';
import { MemoryTopologyStore } from '../src/store/MemoryTopologyStore.js';
import { RedisTopologyStore } from '../src/store/RedisTopologyStore.js';
import type { TopologyStore } from '../src/store/TopologyStore.js';
import type { NodeKind, NodeRecord, NodeSnapshot, NodeStatus, PlacementPolicy, StreamRecord, TopologyEvent } from '../src/types.js';

/** A fixed clock reading (ms); tests move it explicitly. */
export const NOW = 1_700_000_000_000;
export const TTL = 10_000;

export interface NodeOptions {
  kind?: NodeKind;
  volunteer?: boolean;
  maxViewers?: number;
  maxChildren?: number;
  status?: NodeStatus;
  ttlMs?: number;
  now?: number;
}

export function nodeRecord(id: string, o: NodeOptions = {}): NodeRecord {
  return {
    id,
    kind: o.kind ?? 'relay',
    volunteer: o.volunteer ?? false,
    owner: `owner-${id}`,
    url: `http://${id}.test:7000`,
    mediaIp: `10.0.0.${(id.length % 250) + 1}`,
    capacity: { maxViewers: o.maxViewers ?? 100, maxChildren: o.maxChildren ?? 4, upKbps: 10_000, downKbps: 10_000 },
    registeredAt: NOW,
  };
}

export async function addNode(store: TopologyStore, id: string, o: NodeOptions = {}): Promise<NodeRecord> {
  const rec = nodeRecord(id, o);
  await store.upsertNode(rec, o.status ?? 'ready', o.ttlMs ?? TTL, o.now ?? NOW);
  return rec;
}

export function streamRecord(id: string, originNodeId: string, o: Partial<StreamRecord> = {}): StreamRecord {
  return { id, title: `stream ${id} é✓`, state: 'live', createdAt: NOW - 1000, updatedAt: NOW, originNodeId, owner: 'broadcaster', ...o };
}

export const policy = (maxChildren: number, now = NOW): PlacementPolicy => ({ maxChildren, now });

export function stats(viewers: number, children = 0): NodeStats {
  return { viewers, children, bitrateInKbps: 1000, bitrateOutKbps: 2000, lossRate: 0, cpu: 0.1, bytesOut: 0 };
}

export function snapshot(viewers: number, streams: CarriedStream[]): NodeSnapshot {
  return { stats: stats(viewers, streams.reduce((n, s) => n + s.children, 0)), streams };
}

/** One stream as a node reports it; `childNodeIds` are the relays its pipes feed (their count is `children`). */
export function carried(streamId: string, parentNodeId: string | null, depth: number, viewers: number, childNodeIds: string[] = []): CarriedStream {
  return { streamId, parentNodeId, depth, viewers, children: childNodeIds.length, childNodeIds, bitrateOutKbps: 1500 };
}

/** Resolves the CascadeError code a promise rejects with (fails if it resolves or throws anything else). */
export async function rejectionCode(p: Promise<unknown>): Promise<ErrorCode> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CascadeError);
  return (err as CascadeError).code;
}

/** How a contract test gets a store. `fresh()` loses all state, like a Redis restart. */
export interface StoreFactory {
  name: 'memory' | 'redis';
  /** `maxChildren`: K for the tree edges heartbeats restore (see TopologyStoreOptions). */
  create(options?: { maxChildren?: number }): Promise<TopologyStore>;
  /** Wipe all shared state (before each test, and to simulate a restart). */
  wipe(): Promise<void>;
  /** A store holding no state at all: for memory a new one, for Redis the same one after a wipe. */
  lost(store: TopologyStore): Promise<TopologyStore>;
  dispose(): Promise<void>;
}

export function memoryFactory(): StoreFactory {
  return {
    name: 'memory',
    create: async (options = {}) => new MemoryTopologyStore(options),
    wipe: async () => {},
    lost: async (store) => {
      await store.close();
      return new MemoryTopologyStore();
    },
    dispose: async () => {},
  };
}

export function redisFactory(url: () => string): StoreFactory {
  let admin: Redis | undefined;
  const connection = () => (admin ??= new Redis(url(), { maxRetriesPerRequest: 1 }));
  return {
    name: 'redis',
    create: (options = {}) => RedisTopologyStore.connect({ url: url(), ...options }, { logger: silentLogger }),
    wipe: async () => {
      await connection().flushdb();
    },
    lost: async (store) => {
      await connection().flushdb();
      return store;
    },
    dispose: async () => {
      admin?.disconnect();
      admin = undefined;
    },
  };
}

/** Collects events; `until(n)` resolves once n have arrived. */
export function collector() {
  const events: TopologyEvent[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const handler = (e: TopologyEvent) => {
    events.push(e);
    for (const w of [...waiters]) {
      if (events.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const until = (n: number) =>
    new Promise<void>((resolve) => {
      if (events.length >= n) resolve();
      else waiters.push({ n, resolve });
    });
  return { events, handler, until };
}
