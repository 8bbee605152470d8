import type { HeartbeatAnswer, NodeSnapshot } from '@cascade/protocol';
import type { TreeEntry } from './types.js';

type DropList = NonNullable<HeartbeatAnswer['dropChildren']>;

/**
 * Pipes a node still feeds to relays that are not its children in the tree. After a move the
 * old parent keeps feeding the child until the child closes that pipe (make-before-break: the
 * new pipe must carry media first), so a stray is normal for a few seconds. One that lasts
 * longer is a child holding on to a copy it was moved away from (a hostile relay collecting a
 * stream from every parent it claims to have lost): the parent is told to close it.
 *
 * Only the tree decides; what the child says plays no part. State is per controller instance,
 * which is the one holding the parent's connection (its heartbeats come here).
 */
export class StrayPipes {
  readonly #graceMs: number;
  /** node → `stream/child` → first heartbeat that showed the stray (ms). */
  readonly #seen = new Map<string, Map<string, number>>();

  constructor(options: { graceMs: number }) {
    this.#graceMs = options.graceMs;
  }

  /**
   * The strays of one heartbeat that outlived the grace period. `tree` reads a stream's tree
   * (only for streams where the node reports children). `judge` false (the store came back
   * recently and is still rebuilding edges from heartbeats): remember, drop nothing.
   */
  async check(nodeId: string, snapshot: NodeSnapshot, tree: (streamId: string) => Promise<TreeEntry[]>, now: number, judge: boolean): Promise<DropList> {
    const before = this.#seen.get(nodeId);
    const seen = new Map<string, number>();
    const drop: DropList = [];
    for (const s of snapshot.streams) {
      if (!s.childNodeIds?.length) continue;
      const entries = await tree(s.streamId);
      const children = new Set(entries.filter((e) => e.parent === nodeId).map((e) => e.nodeId));
      for (const child of s.childNodeIds) {
        if (children.has(child)) continue;
        const key = `${s.streamId}/${child}`;
        const since = before?.get(key) ?? now;
        seen.set(key, since);
        if (judge && now - since >= this.#graceMs && drop.length < 1000) drop.push({ streamId: s.streamId, nodeId: child });
      }
    }
    if (seen.size > 0) this.#seen.set(nodeId, seen);
    else this.#seen.delete(nodeId);
    return drop;
  }

  /**
   * The child said this pipe is dead (it reported the parent lost): no make-before-break to
   * wait for, so if the parent still feeds it at its next heartbeat, that pipe closes then.
   */
  condemn(parentId: string, streamId: string, childId: string): void {
    let seen = this.#seen.get(parentId);
    if (!seen) this.#seen.set(parentId, (seen = new Map()));
    seen.set(`${streamId}/${childId}`, Number.NEGATIVE_INFINITY);
  }

  forget(nodeId: string): void {
    this.#seen.delete(nodeId);
  }
}
