import { CascadeError } from '@cascade/protocol';
import type { Clock } from './clock.js';
import type { TopologyStore } from './store/TopologyStore.js';
import type { TopologyControllerOptions, TopologyNode } from './TopologyControllerTypes.js';
import type { NodeView, StreamRecord } from './types.js';

type RetentionOptions = Pick<TopologyControllerOptions, 'endedRetentionMs' | 'maxEndedStreams'>;

/**
 * What the controller reads from stream records (lookups, audiences, the per-stream tree view)
 * and how long ended ones are kept. Nothing here decides the tree: these are queries over the
 * store, and the retention rule the sweep applies, apart so that TopologyController keeps the
 * decisions.
 */
export class StreamRecords {
  readonly #options: RetentionOptions;
  readonly #store: TopologyStore;
  readonly #clock: Clock;

  constructor(options: RetentionOptions, deps: { store: TopologyStore; clock: Clock }) {
    this.#options = options;
    this.#store = deps.store;
    this.#clock = deps.clock;
  }

  /** The stream, or STREAM_NOT_FOUND. */
  async get(streamId: string): Promise<StreamRecord> {
    const s = await this.#store.getStream(streamId);
    if (!s) throw new CascadeError('CASCADE_ERR_STREAM_NOT_FOUND', streamId);
    return s;
  }

  /**
   * Streams with their audience. Only streams that are not ended have their tree read (an
   * ended one has no viewers), so the cost follows the live streams, which origins bound.
   */
  async listWithViewers(options: { ended?: boolean } = {}): Promise<(StreamRecord & { viewers: number })[]> {
    const streams = (await this.#store.listStreams()).filter((s) => options.ended !== false || s.state !== 'ended');
    return Promise.all(
      streams.map(async (s) => ({ ...s, viewers: s.state === 'ended' ? 0 : await this.viewerCount(s.id) })),
    );
  }

  /** One stream and its audience over every node, or undefined. */
  async withViewers(streamId: string): Promise<{ stream: StreamRecord; viewers: number } | undefined> {
    const stream = await this.#store.getStream(streamId);
    return stream ? { stream, viewers: await this.viewerCount(streamId) } : undefined;
  }

  async viewerCount(streamId: string): Promise<number> {
    return (await this.#store.getTree(streamId)).reduce((n, e) => n + e.viewers, 0);
  }

  /** Every node carrying the stream, shallowest first (STREAM_NOT_FOUND if there is no such stream). */
  async topology(streamId: string): Promise<TopologyNode[]> {
    await this.get(streamId);
    const tree = await this.#store.getTree(streamId);
    const now = this.#clock.now();
    const nodes = new Map((await this.#store.listNodes(now)).map((n) => [n.id, n]));
    return tree
      .map((e) => {
        const n: NodeView | undefined = nodes.get(e.nodeId);
        return {
          id: e.nodeId,
          kind: n?.kind ?? 'relay',
          volunteer: n?.volunteer ?? false,
          status: n?.status ?? 'probing',
          parent: e.parent,
          depth: e.depth,
          viewers: e.viewers,
          children: e.children,
          bitrateOutKbps: Math.round(e.bitrateOutKbps ?? 0),
        };
      })
      .sort((a, b) => a.depth - b.depth || a.id.localeCompare(b.id));
  }

  /**
   * Forget streams ended long ago. Ended streams are remembered for a while, and never more
   * than maxEndedStreams of them (publishing and ending streams in a loop must not grow the
   * store): the oldest go first.
   */
  async pruneEnded(now: number): Promise<void> {
    const endedAt = (s: StreamRecord) => s.endedAt ?? s.updatedAt;
    const ended = (await this.#store.listStreams()).filter((s) => s.state === 'ended').sort((a, b) => endedAt(b) - endedAt(a));
    const keep = this.#options.maxEndedStreams ?? Number.POSITIVE_INFINITY;
    for (const [i, s] of ended.entries()) {
      if (i >= keep || endedAt(s) < now - this.#options.endedRetentionMs) await this.#store.deleteStream(s.id);
    }
  }
}
