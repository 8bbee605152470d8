import { CascadeError, type Logger, type NodeCapacity } from '@cascade/protocol';
import type { TokenService } from '@cascade/controller';
import {
  IntegrityService,
  MediaNode,
  NodeHeartbeat,
  OriginIntegrity,
  PipeEgressService,
  TicketVerifier,
  TrafficMeter,
  TransportService,
  ViewerService,
  type ControlPlane,
  type MediaNodeOptions,
  type ViewerServiceOptions,
  probeRelay,
} from '@cascade/sfu';
import type { UpgradeRouter } from '@cascade/protocol/node';
import { PublisherService, type PublisherServiceOptions } from './PublisherService.js';

export interface OriginNodeOptions {
  media: Omit<MediaNodeOptions, 'kind'>;
  publisher: Omit<PublisherServiceOptions, 'iceServers'>;
  /** Viewers' receipts, where the credits live with this process (see ViewerServiceOptions). */
  receipts?: ViewerServiceOptions['receipts'];
  /** Signed digests of every frame (config integrity.*); absent: nothing is signed. */
  integrity?: { batchIntervalMs: number; probeMs: number };
}

/** Integrity reports passed on per viewer session (a session reports once or twice per node it leaves). */
const MAX_REPORTS_PER_SESSION = 4;

/** How long the origin remembers what it sent, for probes (ms): longer than any replay it must recognise as one. */
const DIGEST_MEMORY_MS = 15_000;

/** What the origin declares: viewers it serves itself and relay pipes it feeds (K per stream is the placement policy's). */
export function originCapacity(maxViewers: number, maxChildRelays: number): NodeCapacity {
  return { maxViewers, maxChildren: maxChildRelays, upKbps: 0, downKbps: 0 };
}

/**
 * The origin: a media node that accepts broadcasters, serves viewers up to its budget and
 * feeds the first level of relays. It talks to the controller only through its ControlPlane
 * (in process when it embeds one, over `/control` otherwise) and heartbeats like any node, so
 * a store that lost its state is rebuilt from it.
 */
export class OriginNode {
  readonly node: MediaNode;
  readonly meter: TrafficMeter;
  readonly publishers: PublisherService;
  readonly control: ControlPlane;
  /** Stream keys and digests (undefined with integrity off). */
  readonly integrity: OriginIntegrity | undefined;
  readonly #log: Logger;
  readonly #heartbeat: NodeHeartbeat;
  #closed = false;

  /**
   * `control` is made once the node exists (a remote one announces the node's media port), and
   * started here: an origin registers before it takes broadcasters.
   */
  static async create(
    options: OriginNodeOptions,
    deps: {
      logger: Logger;
      upgrades: UpgradeRouter;
      tokens: TokenService;
      /** The ticket key, when the controller is in this process (a remote one gives it at registration). */
      ticketPublicKey?: string;
      control: (node: MediaNode, tickets: TicketVerifier) => ControlPlane;
    },
  ): Promise<OriginNode> {
    const tickets = new TicketVerifier(deps.ticketPublicKey);
    const node = await MediaNode.create({ ...options.media, kind: 'origin' }, { logger: deps.logger, upgrades: deps.upgrades, tickets });
    const control = deps.control(node, tickets);
    const origin = new OriginNode(node, control, options, deps);
    try {
      await control.start();
      // A remote controller refuses requests until its reachability check admitted the node.
      await control.whenReady();
      await origin.publishers.adoptStale(await control.listStreams());
    } catch (err) {
      await origin.close();
      throw err;
    }
    origin.#heartbeat.start();
    return origin;
  }

  private constructor(node: MediaNode, control: ControlPlane, options: OriginNodeOptions, deps: { logger: Logger; tokens: TokenService }) {
    this.node = node;
    this.control = control;
    this.#log = deps.logger.child({ component: 'OriginNode', nodeId: node.id });
    this.meter = new TrafficMeter(node, deps);
    node.control = control;
    this.integrity = options.integrity ? this.#startIntegrity(options.integrity, deps.logger) : undefined;
    const integrity = this.integrity;
    this.publishers = new PublisherService(
      node,
      { ...options.publisher, iceServers: options.media.iceServers },
      { control, tokens: deps.tokens, logger: deps.logger, ...(integrity ? { integrityKey: (id: string) => integrity.publicKey(id) } : {}) },
    );
    const reports = new WeakMap<object, number>();
    node
      .use(new TransportService(node))
      .use(this.publishers)
      .use(
        new ViewerService(node, {
          iceServers: options.media.iceServers,
          ...(options.receipts ? { receipts: options.receipts } : {}),
          onIntegrityReport: (session, report) => {
            // Only about the node this session really is on, a few per session (each may cost the origin a probe);
            // the controller confirms before anything happens to the node.
            const n = (reports.get(session) ?? 0) + 1;
            reports.set(session, n);
            if (report.nodeId !== (session.forwardedTo ?? node.id) || n > MAX_REPORTS_PER_SESSION) return;
            control.reportIntegrity(report).catch((err) => session.log.warn({ err }, 'integrity report not passed on'));
          },
          streamFor: (id) => {
            const s = node.stream(id);
            if (!s) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', id);
            return s;
          },
        }),
      )
      .use(new PipeEgressService(node))
      .use(new IntegrityService(node));
    // The origin's own records first, so that a store that lost everything knows the streams
    // before relays report carrying them.
    this.#heartbeat = new NodeHeartbeat(node, this.meter, control, {
      logger: deps.logger,
      beforeBeat: async () => {
        for (const r of this.publishers.records) await control.putStream(r);
      },
    });
  }

  /** Digests and stream keys for every stream here, and the probe the controller asks for when a viewer reports a relay. */
  #startIntegrity(o: { batchIntervalMs: number; probeMs: number }, logger: Logger): OriginIntegrity {
    const integrity = new OriginIntegrity(this.node, { intervalMs: o.batchIntervalMs, memoryMs: DIGEST_MEMORY_MS }, { logger });
    const timeoutMs = this.node.options.signalling.requestTimeoutMs;
    this.control.onProbe(async (p) => {
      const digester = integrity.digester(p.streamId);
      if (!digester) return { verdict: 'inconclusive', detail: 'stream not carried by this origin', frames: 0, rejected: 0 };
      return probeRelay(this.node, this.control, digester, p, { durationMs: o.probeMs, maxAgeMs: 3000, maxDigestLagMs: 700, requestTimeoutMs: timeoutMs }, { logger });
    });
    return integrity;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat.close();
    await this.node.close();
    await this.control.close();
    this.#log.info({}, 'origin closed');
  }
}
