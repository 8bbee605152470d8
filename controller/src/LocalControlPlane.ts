import {
  InvalidStateError,
  ManualChannel,
  type HeartbeatAnswer,
  type IntegrityReport,
  type Logger,
  type MessageChannel,
  type Placement,
  type StreamInfo,
  type StreamRecord,
} from '@cascade/protocol';
import type { TopologyController } from './TopologyController.js';
import type { FrontTunnel, NodeLink, TunnelRouter } from './tunnels/TunnelRouter.js';
import type { BusMessage } from './tunnels/MessageBus.js';
import type { Prober } from './integrity/IntegrityJudge.js';
import type { NodeRecord, NodeSnapshot } from './types.js';

/** Who opened a session hosted here (see sfu's TunnelInfo). */
interface HostedInfo {
  id: string;
  from: string;
  remoteAddress: string;
}

/**
 * The control plane of a media node that embeds its controller (an origin started with the
 * controller role): every call is a call into this process's TopologyController, and sessions
 * for this node arrive from the TunnelRouter without leaving the process. The same interface as
 * a relay's remote control plane (sfu's ControlPlane), so the node's code does not care.
 */
export class LocalControlPlane {
  readonly #controller: TopologyController;
  readonly #router: TunnelRouter;
  readonly #record: NodeRecord;
  readonly #log: Logger;
  readonly #hosted = new Map<string, ManualChannel>();
  #onTunnel: ((channel: MessageChannel, info: HostedInfo) => void) | undefined;
  #link: NodeLink | undefined;
  #withdrawProber: (() => void) | undefined;
  #started = false;
  #closed = false;
  /** Settled by start() (admitted) or close(); whenReady() hands it out. */
  readonly #admitted: Promise<void>;
  #admit!: (err?: Error) => void;

  constructor(record: NodeRecord, deps: { controller: TopologyController; router: TunnelRouter; logger: Logger }) {
    this.#record = record;
    this.#controller = deps.controller;
    this.#router = deps.router;
    this.#log = deps.logger.child({ component: 'LocalControlPlane', nodeId: record.id });
    this.#admitted = new Promise<void>((resolve, reject) => {
      this.#admit = (err) => (err ? reject(err) : resolve());
    });
    // Nobody may ever ask (a node closed before it started): no unhandled rejection for that.
    this.#admitted.catch(() => {});
  }

  get nodeId(): string | undefined {
    return this.#started ? this.#record.id : undefined;
  }

  get heartbeatIntervalMs(): number {
    return this.#controller.heartbeatIntervalMs;
  }

  async start(): Promise<string> {
    await this.#controller.registerNode(this.#record, 'ready');
    const link: NodeLink = { deliver: (msg) => this.#deliver(msg) };
    this.#link = link;
    await this.#router.attachNode(this.#record.id, link);
    this.#started = true;
    this.#admit();
    return this.#record.id;
  }

  /** The embedded controller registers this node as ready in start(): no reachability check to wait for. */
  whenReady(): Promise<void> {
    if (this.#closed) return Promise.reject(new InvalidStateError('control plane closed'));
    return this.#admitted;
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      // Before start() completed: its waiters must not wait forever (after it, this is a no-op).
      this.#admit(new InvalidStateError('control plane closed'));
    }
    if (!this.#link) return;
    this.#router.detachNode(this.#record.id, this.#link, true);
    this.#link = undefined;
    this.#withdrawProber?.();
    for (const c of [...this.#hosted.values()]) c.closed(1001, 'CASCADE_ERR_NODE_SHUTTING_DOWN');
    this.#hosted.clear();
    await this.#controller.nodeGone(this.#record.id, 'node shutting down').catch((err) => this.#log.warn({ err }, 'cannot remove the node now'));
  }

  async heartbeat(snapshot: NodeSnapshot): Promise<HeartbeatAnswer> {
    const answer = await this.#controller.nodeHeartbeat(this.#record, 'ready', snapshot);
    await this.#router.refreshNode(this.#record.id);
    return answer;
  }

  placeViewer(request: { streamId: string; exclude?: string[]; token?: string }): Promise<{ placement: Placement; stream: StreamInfo; integrityKey?: string }> {
    return this.#controller.placeViewer(request);
  }

  viewerLeft(streamId: string): void {
    this.placementUnused(streamId, this.#record.id);
  }

  placementUnused(streamId: string, nodeId: string): void {
    this.#controller.viewerLeft(nodeId, streamId).catch((err) => this.#log.warn({ err, streamId, nodeId }, 'cannot release viewer'));
  }

  openTunnel(nodeId: string, info: { remoteAddress: string }): FrontTunnel {
    return this.#router.openFront(nodeId, info);
  }

  onTunnel(handler: (channel: MessageChannel, info: HostedInfo) => void): void {
    this.#onTunnel = handler;
  }

  putStream(record: StreamRecord): Promise<void> {
    return this.#controller.putStream(record);
  }

  listStreams(): Promise<StreamRecord[]> {
    return this.#controller.listStreamRecords();
  }

  async getStream(streamId: string): Promise<{ stream: StreamRecord; viewers: number } | undefined> {
    return this.#controller.streamWithViewers(streamId);
  }

  /** The node with the embedded controller is the origin: it has no parent to judge. */
  async parentSilent(): Promise<boolean> {
    return false;
  }

  async reportIntegrity(report: IntegrityReport): Promise<void> {
    // Confirming takes seconds (a probe through the relay): the viewer is not kept waiting.
    void this.#controller.integrity.report(report, { session: this.#record.id });
  }

  onProbe(prober: Prober): void {
    this.#withdrawProber?.();
    this.#withdrawProber = this.#controller.integrity.registerProber(this.#record.id, prober);
  }

  async parentLost(streamId: string, parentNodeId: string): Promise<void> {
    await this.#controller.parentLost(this.#record.id, streamId, parentNodeId);
  }

  async streamReleased(streamId: string): Promise<void> {
    await this.#controller.streamReleased(this.#record.id, streamId);
  }

  async drain(): Promise<void> {
    await this.#controller.drainNode(this.#record.id);
  }

  /** A tunnel frame for a session hosted on this node (a child relay's pipe, a viewer entering at another instance). */
  #deliver(msg: BusMessage): void {
    const nodeId = this.#record.id;
    switch (msg.op) {
      case 'open': {
        if (!this.#onTunnel || this.#hosted.has(msg.id)) return;
        const id = msg.id;
        const channel = new ManualChannel(
          (data) => this.#fromHere(() => this.#router.fromNode(nodeId, { op: 'data', id, data })),
          (code, reason) => {
            this.#hosted.delete(id);
            this.#fromHere(() => this.#router.fromNode(nodeId, { op: 'close', id, code, reason }));
          },
        );
        this.#hosted.set(id, channel);
        channel.onClose(() => this.#hosted.delete(id));
        this.#onTunnel(channel, { id, from: msg.from, remoteAddress: msg.remoteAddress ?? '' });
        return;
      }
      case 'data':
        this.#hosted.get(msg.id)?.deliver(msg.data ?? '');
        return;
      case 'close': {
        const c = this.#hosted.get(msg.id);
        this.#hosted.delete(msg.id);
        c?.closed(msg.code ?? 1000, msg.reason ?? '');
        return;
      }
      case 'notice':
        return;
    }
  }

  #fromHere(send: () => void): void {
    try {
      send();
    } catch (err) {
      // The router forgot the tunnel (its peer closed it meanwhile): nothing to carry.
      this.#log.debug({ err }, 'tunnel frame not carried');
    }
  }
}
