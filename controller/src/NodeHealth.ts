import { CascadeError, type NodeSnapshot } from '@cascade/protocol';
import type { Clock } from './clock.js';
import type { TopologyStore } from './store/TopologyStore.js';
import type { NodeRecord } from './types.js';

/** Viewers' reports older than this no longer count (ms). */
const VIEWER_REPORT_WINDOW_MS = 30_000;
/** Viewers that must report before what they see counts against a node. */
const MIN_REPORTING_VIEWERS = 2;
/** A relay sending more than this share of its declared upload is saturated (demoted like a lossy one). */
const UPLINK_DEMOTE_SHARE = 0.9;
/** Consecutive unhealthy heartbeats before a relay is demoted, healthy ones before it is restored. */
const DEMOTE_AFTER = 3;
const RESTORE_AFTER = 5;

export interface NodeHealthOptions {
  /** Loss (its pipe's, or its viewers') beyond what its parent already lost that makes a relay unhealthy. */
  demoteLossRate: number;
  /** CPU share beyond which a relay is unhealthy. */
  demoteCpu: number;
}

/**
 * Whether a relay delivers what it should, judged from its heartbeats and from what its
 * viewers report receiving from it: a run of unhealthy heartbeats demotes it (no new
 * traffic), a run of healthy ones restores it. Only the verdict is decided here; the
 * controller applies it.
 */
export class NodeHealth {
  readonly #options: NodeHealthOptions;
  readonly #store: TopologyStore;
  readonly #clock: Clock;
  readonly #runs = new Map<string, { bad: number; good: number }>();
  /**
   * Loss each node's viewers report (their receipts), per viewer session: what the node really
   * delivers. Several viewers must agree before it counts against a node (one viewer can lie,
   * or sit on a bad link of its own).
   */
  readonly #viewerLoss = new Map<string, Map<string, { packets: number; lost: number; at: number }>>();

  constructor(options: NodeHealthOptions, deps: { store: TopologyStore; clock: Clock }) {
    this.#options = options;
    this.#store = deps.store;
    this.#clock = deps.clock;
  }

  /** A viewer's account of what it received from `nodeId` over one interval (its receipt). */
  viewerReport(session: string, nodeId: string, report: { packets: number; lost?: number }): void {
    if (report.lost === undefined || report.packets + report.lost <= 0) return;
    let byViewer = this.#viewerLoss.get(nodeId);
    if (!byViewer) this.#viewerLoss.set(nodeId, (byViewer = new Map()));
    byViewer.set(session, { packets: report.packets, lost: report.lost, at: this.#clock.now() });
  }

  /** Count its heartbeats from zero (a relay just demoted for silence earns its way back from now on). */
  restartRun(nodeId: string): void {
    this.#runs.set(nodeId, { bad: 0, good: 0 });
  }

  forget(nodeId: string): void {
    this.#runs.delete(nodeId);
    this.#viewerLoss.delete(nodeId);
  }

  /**
   * One heartbeat's verdict: 'demote' every DEMOTE_AFTER unhealthy heartbeats in a row,
   * 'restore' every RESTORE_AFTER healthy ones (not only the first time: a store write that
   * failed once is tried again instead of leaving the relay as it was), else nothing.
   */
  async verdict(record: NodeRecord, snapshot: NodeSnapshot): Promise<'demote' | 'restore' | undefined> {
    const { cpu, lossRate, bitrateOutKbps } = snapshot.stats;
    const { demoteLossRate, demoteCpu } = this.#options;
    const up = record.capacity.upKbps;
    // Loss already present at the parent (a broadcaster on bad Wi-Fi, a lossy grandparent) reaches
    // every node below it: only what this relay adds is held against it, or one bad uplink would
    // demote the whole tree and leave new viewers nowhere to go.
    const inherited = lossRate > demoteLossRate || this.#viewerLoss.has(record.id) ? await this.#inheritedLoss(record.id) : 0;
    // What its own pipe loses, and what its viewers lose on the way from it: either, beyond what
    // its parent already lost, makes a relay take no new viewers.
    const lossy = (lossRate > demoteLossRate && lossRate - inherited > demoteLossRate) || this.#viewersLossRate(record.id) - inherited > demoteLossRate;
    const unhealthy = cpu > demoteCpu || lossy || (up > 0 && bitrateOutKbps > up * UPLINK_DEMOTE_SHARE);
    const run = this.#runs.get(record.id) ?? { bad: 0, good: 0 };
    if (unhealthy) {
      run.bad++;
      run.good = 0;
    } else {
      run.good++;
      run.bad = 0;
    }
    this.#runs.set(record.id, run);
    if (run.bad > 0 && run.bad % DEMOTE_AFTER === 0) return 'demote';
    if (run.good > 0 && run.good % RESTORE_AFTER === 0) return 'restore';
    return undefined;
  }

  /**
   * The loss a node's viewers see, over the reports of the last VIEWER_REPORT_WINDOW_MS: the
   * median of their rates, when at least MIN_REPORTING_VIEWERS reported (else 0).
   */
  #viewersLossRate(nodeId: string): number {
    const byViewer = this.#viewerLoss.get(nodeId);
    if (!byViewer) return 0;
    const since = this.#clock.now() - VIEWER_REPORT_WINDOW_MS;
    const rates: number[] = [];
    for (const [session, r] of byViewer) {
      if (r.at < since) byViewer.delete(session);
      else rates.push(r.lost / (r.packets + r.lost));
    }
    if (rates.length < MIN_REPORTING_VIEWERS) return 0;
    rates.sort((a, b) => a - b);
    return rates[Math.floor(rates.length / 2)]!;
  }

  /**
   * The worst upstream loss reported by this node's parents, over the streams the store has it
   * carrying (not the ones it claims). Node-wide figures: a parent with one lossy stream excuses
   * its children on all of them.
   */
  async #inheritedLoss(nodeId: string): Promise<number> {
    const parents = new Set<string>();
    for (const streamId of await this.#store.nodeStreams(nodeId)) {
      const parent = (await this.#store.getTree(streamId)).find((e) => e.nodeId === nodeId)?.parent;
      if (parent) parents.add(parent);
    }
    const now = this.#clock.now();
    let worst = 0;
    for (const id of parents) worst = Math.max(worst, (await this.#store.getNode(id, now))?.stats?.lossRate ?? 0);
    return worst;
  }
}

/** Figures no honest node can report, given what it declared: refused with RELAY_INVALID_STATS. */
export function checkFigures(record: NodeRecord, { stats, streams }: NodeSnapshot): void {
  const cap = record.capacity;
  const problems: string[] = [];
  if (stats.viewers > cap.maxViewers * 2 + 10) problems.push(`viewers ${stats.viewers} > declared ${cap.maxViewers}`);
  if (stats.children > cap.maxChildren * 2 + 2) problems.push(`children ${stats.children} > declared ${cap.maxChildren}`);
  if (cap.upKbps > 0 && stats.bitrateOutKbps > cap.upKbps * 4 + 2000) problems.push(`bitrate out exceeds declared uplink`);
  const sum = streams.reduce((n, s) => n + s.viewers, 0);
  if (sum > stats.viewers + 10) problems.push('per-stream viewers exceed the total');
  if (new Set(streams.map((s) => s.streamId)).size !== streams.length) problems.push('a stream is listed twice');
  if (problems.length > 0) throw new CascadeError('CASCADE_ERR_RELAY_INVALID_STATS', problems.join('; '));
}
