import { TypedEmitter, type IntegrityReport, type IntegrityVerdict, type Logger } from '@cascade/protocol';
import type { TicketSigner } from '../auth/TicketSigner.js';
import type { TopologyStore } from '../store/TopologyStore.js';
import type { NodeView } from '../types.js';

/** What an origin does when asked to watch a stream through a relay (see sfu's probeRelay). */
export type Prober = (p: { streamId: string; relayId: string; ticket: string }) => Promise<IntegrityVerdict>;

export interface IntegrityJudgeOptions {
  /** After a clean probe, reports about that relay and stream are not probed again for this long (ms). */
  cooldownMs: number;
}

export interface IntegrityJudgeDeps {
  store: TopologyStore;
  tickets: TicketSigner;
  logger: Logger;
  now(): number;
  /** Take the relay out: demoted for good, children moved, token revoked, viewers told to move. */
  condemn(nodeId: string, reason: { streamId: string; code: string; detail: string }): Promise<void>;
}

export type IntegrityJudgeObserverEvents = {
  /** A viewer's report arrived (before anything is decided on it). */
  report: [report: IntegrityReport];
  /** An origin's probe of a relay ended. */
  verdict: [streamId: string, relayId: string, verdict: IntegrityVerdict];
  condemned: [nodeId: string, streamId: string, code: string];
  listenererror: [event: string, error: unknown];
};

/**
 * How a viewer's word that a relay altered the stream (or withholds its digests, or stopped its
 * picture) turns into that relay's removal, without any viewer's word being enough: the
 * stream's origin watches the stream through the relay itself (a probe: a pipe opened as a child
 * relay would, with a ticket this controller signs) and compares what comes with the digests of
 * what it sent. Only its 'tampered' verdict counts. A relay fed by another relay is condemned only
 * if its parent, probed the same way, is clean: a fault comes from the highest relay that shows
 * it, not from everyone below.
 *
 * Probes run on the origin connected to this controller instance (embedded, or over /control);
 * elsewhere the report is logged and left (the viewers have moved already).
 */
/** What a check of one relay came to: condemned, found clean, or neither (unclear, or the fault is above it). */
type Outcome = 'condemned' | 'clean' | 'unknown';

export class IntegrityJudge {
  readonly observer = new TypedEmitter<IntegrityJudgeObserverEvents>();
  readonly #options: IntegrityJudgeOptions;
  readonly #deps: IntegrityJudgeDeps;
  readonly #log: Logger;
  readonly #probers = new Map<string, Prober>();
  /** `stream/relay` → the probe under way (one at a time) or when the last clean one ended. */
  readonly #inFlight = new Map<string, Promise<Outcome>>();
  readonly #cleared = new Map<string, number>();
  /** Relays condemned through this instance: the streams they carried then, why, when. */
  readonly #condemned = new Map<string, { streams: Set<string>; code: string; at: number }>();

  constructor(options: IntegrityJudgeOptions, deps: IntegrityJudgeDeps) {
    this.#options = options;
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'IntegrityJudge' });
  }

  /** An origin connected here answers probes with `prober`; returns the function that withdraws it. */
  registerProber(originId: string, prober: Prober): () => void {
    this.#probers.set(originId, prober);
    return () => {
      if (this.#probers.get(originId) === prober) this.#probers.delete(originId);
    };
  }

  /** Relays condemned through this instance that carried `streamId` (most recent first), for the API. */
  condemnedFor(streamId: string): { nodeId: string; code: string; at: number }[] {
    return [...this.#condemned]
      .filter(([, c]) => c.streams.has(streamId))
      .map(([nodeId, c]) => ({ nodeId, code: c.code, at: c.at }))
      .sort((a, b) => b.at - a.at);
  }

  isCondemned(nodeId: string): boolean {
    return this.#condemned.has(nodeId);
  }

  /**
   * A viewer's report about the node serving it. Resolves once it has been dealt with (a probe
   * can take a few seconds); never throws.
   */
  async report(report: IntegrityReport, from: { session: string }): Promise<void> {
    this.observer.safeEmit('report', report);
    const now = this.#deps.now();
    const node = await this.#deps.store.getNode(report.nodeId, now).catch(() => undefined);
    if (!node || node.kind !== 'relay') {
      // An origin is the deployment's own: a viewer that cannot verify it has a problem of its own (or lies).
      this.#log.info({ ...report, session: from.session, kind: node?.kind }, 'integrity report about a node that is not a relay: not acted on');
      return;
    }
    this.#log.warn({ ...report, session: from.session }, 'viewer reports a relay: asking the origin to check it');
    await this.#confirm(report.streamId, node, now);
  }

  /** Probe `relay` (and, if it shows a fault, its relay parent): what became of it. */
  async #confirm(streamId: string, relay: NodeView, now: number): Promise<Outcome> {
    const done = this.#condemned.get(relay.id);
    if (done) {
      done.streams.add(streamId);
      return 'condemned';
    }
    const key = `${streamId}/${relay.id}`;
    const cleared = this.#cleared.get(key);
    if (cleared !== undefined && now - cleared < this.#options.cooldownMs) return 'clean';
    let running = this.#inFlight.get(key);
    if (!running) {
      running = this.#probeAndJudge(streamId, relay).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, running);
    }
    return running;
  }

  async #probeAndJudge(streamId: string, relay: NodeView): Promise<Outcome> {
    // Its parent as its viewers saw it: during the probe, a parent that froze is declared gone and
    // the relay re-parented (traced: an honest relay under a relay whose Node process hung while
    // its worker kept forwarding media without digests was then judged alone, and condemned).
    const parentId = (await this.#deps.store.getTree(streamId).catch(() => [])).find((e) => e.nodeId === relay.id)?.parent;
    const verdict = await this.#probe(streamId, relay);
    this.observer.safeEmit('verdict', streamId, relay.id, verdict);
    const log = { streamId, relayId: relay.id, ...verdict };
    if (verdict.verdict !== 'tampered') {
      this.#log.info(log, verdict.verdict === 'clean' ? "origin's probe found the relay clean: no action" : "origin's probe could not tell: no action");
      if (verdict.verdict === 'clean') this.#cleared.set(`${streamId}/${relay.id}`, this.#deps.now());
      return verdict.verdict === 'clean' ? 'clean' : 'unknown';
    }
    // The fault may come from higher up: a relay passes on what its parent sends. It is this
    // relay's only if its parent is the origin, or a relay the origin's probe finds clean; not if
    // that parent has the fault too, nor if it cannot be checked (gone meanwhile, or unclear).
    const parent = parentId ? await this.#deps.store.getNode(parentId, this.#deps.now()).catch(() => undefined) : undefined;
    if (parentId && parent?.kind !== 'origin') {
      this.#log.warn(log, "origin's probe confirms the fault at this relay: checking its parent relay first");
      const above = parent ? await this.#confirm(streamId, parent, this.#deps.now()) : 'unknown';
      if (above !== 'clean') {
        this.#log.warn({ ...log, parentId, parent: above }, above === 'condemned' ? 'the fault is its parent relay\'s: this relay is left alone' : 'its parent relay cannot be checked (gone, or unclear): this relay is not condemned');
        return 'unknown';
      }
    }
    this.#log.warn(log, "origin's probe confirms: relay alters or withholds the stream; condemning it");
    const streams = new Set([streamId, ...(await this.#deps.store.nodeStreams(relay.id).catch(() => []))]);
    this.#condemned.set(relay.id, { streams, code: verdict.code ?? 'CASCADE_ERR_INTEGRITY_CONFIRMED', at: this.#deps.now() });
    this.observer.safeEmit('condemned', relay.id, streamId, verdict.code ?? '');
    await this.#deps.condemn(relay.id, { streamId, code: verdict.code ?? 'CASCADE_ERR_INTEGRITY_CONFIRMED', detail: verdict.detail }).catch((err) => this.#log.error({ err, relayId: relay.id }, 'cannot condemn the relay'));
    return 'condemned';
  }

  async #probe(streamId: string, relay: NodeView): Promise<IntegrityVerdict> {
    const inconclusive = (detail: string): IntegrityVerdict => ({ verdict: 'inconclusive', detail, frames: 0, rejected: 0 });
    const stream = await this.#deps.store.getStream(streamId).catch(() => undefined);
    if (!stream || stream.state === 'ended') return inconclusive('stream not live');
    const prober = this.#probers.get(stream.originNodeId);
    if (!prober) return inconclusive(`origin ${stream.originNodeId} is not connected to this controller instance`);
    const origin = await this.#deps.store.getNode(stream.originNodeId, this.#deps.now()).catch(() => undefined);
    if (!origin) return inconclusive('origin unknown');
    // The probe pulls like a child relay: a pipe ticket naming the origin as child, at the origin's own address.
    const ticket = this.#deps.tickets.pipe({ stream: streamId, node: relay.id, child: origin.id, childIp: origin.mediaIp });
    try {
      return await prober({ streamId, relayId: relay.id, ticket });
    } catch (err) {
      return inconclusive(`probe failed: ${(err as Error).message}`.slice(0, 300));
    }
  }
}
