import type { Logger } from '@cascade/protocol';
import type { NodeRecord, TokenService, TopologyController } from '@cascade/controller';
import {
  MediaNode,
  PipeEgressService,
  TicketVerifier,
  TrafficMeter,
  TransportService,
  ViewerService,
  nodeSnapshot,
  type ControlPlane,
  type MediaNodeOptions,
} from '@cascade/sfu';
import { CascadeError } from '@cascade/protocol';
import type { UpgradeRouter } from '@cascade/protocol/node';
import { PublisherService, type PublisherServiceOptions } from './PublisherService.js';

export interface OriginNodeOptions {
  media: Omit<MediaNodeOptions, 'kind'>;
  publisher: Omit<PublisherServiceOptions, 'iceServers'>;
  /** Viewers the origin serves itself. */
  maxViewers: number;
  /** Relay pipes it feeds, all streams together (K per stream is the placement policy's). */
  maxChildRelays: number;
  heartbeatIntervalMs: number;
}

/**
 * The origin: a media node that accepts broadcasters, serves viewers up to its budget and
 * feeds the first level of relays. It talks to the controller in process and heartbeats
 * into the store like any node, so a store that lost its state is rebuilt from it.
 */
export class OriginNode {
  readonly node: MediaNode;
  readonly meter: TrafficMeter;
  readonly publishers: PublisherService;
  readonly record: NodeRecord;
  readonly #controller: TopologyController;
  readonly #log: Logger;
  readonly #timer: ReturnType<typeof setInterval>;
  #closed = false;

  static async create(
    options: OriginNodeOptions,
    deps: { logger: Logger; upgrades: UpgradeRouter; controller: TopologyController; tokens: TokenService },
  ): Promise<OriginNode> {
    const tickets = new TicketVerifier(deps.controller.tickets.publicKey);
    const node = await MediaNode.create({ ...options.media, kind: 'origin' }, { logger: deps.logger, upgrades: deps.upgrades, tickets });
    const origin = new OriginNode(node, options, deps);
    await deps.controller.registerNode(origin.record, 'ready');
    await origin.publishers.adoptStale(await deps.controller.store.listStreams());
    return origin;
  }

  private constructor(
    node: MediaNode,
    options: OriginNodeOptions,
    deps: { logger: Logger; controller: TopologyController; tokens: TokenService },
  ) {
    this.node = node;
    this.#controller = deps.controller;
    this.#log = deps.logger.child({ component: 'OriginNode', nodeId: node.id });
    this.meter = new TrafficMeter(node, deps);
    this.record = {
      id: node.id,
      kind: 'origin',
      volunteer: false,
      owner: 'origin',
      url: options.media.publicUrl,
      mediaIp: node.pipeListenIp.announcedIp,
      capacity: { maxViewers: options.maxViewers, maxChildren: options.maxChildRelays, upKbps: 0, downKbps: 0 },
      registeredAt: Date.now(),
    };
    node.control = this.#controlPlane();
    this.publishers = new PublisherService(
      node,
      { ...options.publisher, iceServers: options.media.iceServers },
      { controller: deps.controller, tokens: deps.tokens, logger: deps.logger },
    );
    node
      .use(new TransportService(node))
      .use(this.publishers)
      .use(
        new ViewerService(node, {
          iceServers: options.media.iceServers,
          streamFor: (id) => {
            const s = node.stream(id);
            if (!s) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', id);
            return s;
          },
        }),
      )
      .use(new PipeEgressService(node));
    this.meter.start(options.heartbeatIntervalMs);
    this.#timer = setInterval(() => void this.#heartbeat(), options.heartbeatIntervalMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.meter.stop();
    await this.node.close();
    await this.#controller.nodeGone(this.node.id, 'origin shutting down').catch(() => {});
  }

  #controlPlane(): ControlPlane {
    const controller = this.#controller;
    const nodeId = this.node.id;
    const log = this.#log;
    return {
      placeViewer: (request) => controller.placeViewer(request),
      viewerLeft: (streamId) => {
        controller.viewerLeft(nodeId, streamId).catch((err) => log.warn({ err, streamId }, 'cannot release viewer'));
      },
    };
  }

  async #heartbeat(): Promise<void> {
    try {
      // The origin's own records first, so that a store that lost everything knows the
      // streams before relays report carrying them.
      for (const r of this.publishers.records) await this.#controller.putStream(r);
      await this.#controller.nodeHeartbeat(this.record, 'ready', nodeSnapshot(this.node, this.meter));
    } catch (err) {
      this.#log.warn({ err }, 'origin heartbeat failed');
    }
  }
}
