import { DefaultReconnectPolicy, type Logger, type ReconnectPolicy } from '@cascade/protocol';

export interface ParentLossReporterOptions {
  /**
   * Delay before each report of an episode (retryCount 0 is the first). Default: at once, then
   * 250 ms doubling to 10 s, with jitter, for as long as the stream lives.
   */
  policy?: ReconnectPolicy;
}

interface Episode {
  /** The parent to report: the latest one that failed. */
  parentNodeId: string;
  retryCount: number;
  since: number;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * Tells the controller that a stream's parent is lost (its pipe would not open, or closed, or
 * stalled) so that it picks another one. One episode per stream lasts until a pipe carries the
 * stream again: every report in it waits longer than the one before, so a controller that can
 * only offer the same broken parent again (nobody else has room) and the relay do not retry each
 * other in a tight loop. A report that does not get through (controller away, timeout) is sent
 * again: without it the tree would show the relay fed while nothing feeds it.
 */
export class ParentLossReporter {
  readonly #report: (streamId: string, parentNodeId: string) => Promise<void>;
  readonly #policy: ReconnectPolicy;
  readonly #log: Logger;
  readonly #episodes = new Map<string, Episode>();
  #closed = false;

  constructor(
    options: ParentLossReporterOptions,
    deps: { logger: Logger; report: (streamId: string, parentNodeId: string) => Promise<void> },
  ) {
    this.#report = deps.report;
    this.#policy = options.policy ?? new DefaultReconnectPolicy({ initialDelayMs: 0, baseDelayMs: 250, maxDelayMs: 10_000, maxElapsedMs: Infinity });
    this.#log = deps.logger.child({ component: 'ParentLossReporter' });
  }

  /** The stream's parent failed: report it (now if it is the first failure, else after a backoff). */
  lost(streamId: string, parentNodeId: string): void {
    if (this.#closed) return;
    let e = this.#episodes.get(streamId);
    if (!e) this.#episodes.set(streamId, (e = { parentNodeId, retryCount: 0, since: Date.now() }));
    e.parentNodeId = parentNodeId;
    if (!e.timer) this.#schedule(streamId, e);
  }

  /**
   * A new assignment for the stream is being tried: the controller has moved on, so a report
   * still waiting would be stale. The episode (and its backoff) goes on until recovered().
   */
  cancel(streamId: string): void {
    const e = this.#episodes.get(streamId);
    if (!e?.timer) return;
    clearTimeout(e.timer);
    e.timer = undefined;
  }

  /** A pipe carries the stream again, or the stream is gone: the episode is over. */
  recovered(streamId: string): void {
    this.cancel(streamId);
    this.#episodes.delete(streamId);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#episodes.keys()]) this.recovered(id);
  }

  #schedule(streamId: string, e: Episode): void {
    const delay = this.#policy.nextRetryDelayMs({ retryCount: e.retryCount, elapsedMs: Date.now() - e.since });
    if (delay === null) {
      this.#log.error({ streamId, parentId: e.parentNodeId, reports: e.retryCount }, 'giving up reporting the lost parent');
      this.#episodes.delete(streamId);
      return;
    }
    e.retryCount++;
    e.timer = setTimeout(() => void this.#send(streamId, e), delay);
    e.timer.unref();
  }

  async #send(streamId: string, e: Episode): Promise<void> {
    e.timer = undefined;
    if (this.#closed || this.#episodes.get(streamId) !== e) return;
    try {
      await this.#report(streamId, e.parentNodeId);
      this.#log.debug({ streamId, parentId: e.parentNodeId, reports: e.retryCount }, 'lost parent reported');
    } catch (err) {
      // Any failure, a refusal included: one during a re-registration (RELAY_NOT_REGISTERED) is
      // over once the relay is registered again, and the backoff bounds the cost of the others.
      if (this.#closed || this.#episodes.get(streamId) !== e || e.timer) return;
      this.#log.warn({ err, streamId, parentId: e.parentNodeId, reports: e.retryCount }, 'cannot report the lost parent now; trying again');
      this.#schedule(streamId, e);
    }
  }
}
