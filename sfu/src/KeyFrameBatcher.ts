/**
 * Gathers the viewers that come back to a stream together. The viewers of a failed node
 * arrive within a few hundred ms of each other; resuming a video consumer asks for a key
 * frame, and upstream key frame requests are throttled (one per second per stream), so a
 * viewer resumed just after the first key frame passed would wait a whole second for the
 * next. Resuming them together after a short gather time lets one key frame serve them all.
 */
export class KeyFrameBatcher {
  readonly #gatherMs: number;
  /** Per stream, the end of the batch being gathered. */
  readonly #batches = new Map<string, Promise<void>>();

  /** `gatherMs` 0: no batching, every viewer goes at once. */
  constructor(gatherMs: number) {
    this.#gatherMs = gatherMs;
  }

  /** Resolves when the batch `streamId`'s caller belongs to may resume (opening one if none is gathering). */
  join(streamId: string): Promise<void> {
    if (this.#gatherMs <= 0) return Promise.resolve();
    let batch = this.#batches.get(streamId);
    if (!batch) {
      batch = new Promise<void>((resolve) => setTimeout(resolve, this.#gatherMs)).then(() => {
        this.#batches.delete(streamId);
      });
      this.#batches.set(streamId, batch);
    }
    return batch;
  }
}
