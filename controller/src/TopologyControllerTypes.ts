import type { Logger } from '@cascade/protocol';
import type { TokenService } from './auth/TokenService.js';
import type { Clock } from './clock.js';
import type { TopologyStore } from './store/TopologyStore.js';
import type { NodeRecord, NodeStatus, TopologyEvent } from './types.js';

// TopologyController's options, dependencies, events and views, apart from the class (as
// RelayTypes.ts is from Relay.ts): the modules it delegates to can name them without importing it.

export interface TopologyControllerOptions {
  /** K: child relays per node per stream. */
  maxChildren: number;
  heartbeatIntervalMs: number;
  nodeTtlMs: number;
  /** CPU fraction (0..1) above which a relay is demoted. */
  demoteCpu: number;
  demoteLossRate: number;
  /** What one viewer or child relay costs a node's uplink (kbit/s): a relay takes no more copies than its declared upload carries. */
  viewerKbps: number;
  ticketTtlSec: number;
  watchTokenRequired: boolean;
  /** How long an ended stream stays visible as ended. */
  endedRetentionMs: number;
  /** At most this many ended streams are kept (the newest); default: no cap but endedRetentionMs. */
  maxEndedStreams?: number;
}

export interface TopologyControllerDeps {
  store: TopologyStore;
  logger: Logger;
  /** Verifies watch tokens; required when watchTokenRequired. */
  tokens?: TokenService;
  clock?: Clock;
  /** Fixed ticket key (from a file); otherwise one is generated once and kept in the store. */
  ticketKey?: { privateKey: string; publicKey: string };
}

/** One node carrying a stream, as the topology API and the dashboard show it. */
export interface TopologyNode {
  id: string;
  kind: NodeRecord['kind'];
  volunteer: boolean;
  status: NodeStatus;
  parent: string | null;
  depth: number;
  viewers: number;
  children: number;
  bitrateOutKbps: number;
}

export type AssignEvent = Extract<TopologyEvent, { type: 'assign' }>;
export type CondemnEvent = Extract<TopologyEvent, { type: 'condemn' }>;
export type TopologyControllerEvents = {
  /** A relay must carry a stream from a (new) parent. Delivered on every instance. */
  assign: [event: AssignEvent];
  /** A relay was caught altering or withholding media (see IntegrityJudge). Delivered on every instance. */
  condemn: [event: CondemnEvent];
  nodegone: [nodeId: string];
  listenererror: [event: string, error: unknown];
};
export type TopologyControllerObserverEvents = {
  placement: [streamId: string, nodeId: string, attached: boolean];
  reparent: [streamId: string, childId: string, parentId: string];
  nodegone: [nodeId: string];
  close: [];
  listenererror: [event: string, error: unknown];
};
