import type { Logger } from '@cascade/protocol';
import type { ControlPlane } from './ControlPlane.js';
import type { MediaNode } from './MediaNode.js';
import { nodeSnapshot } from './snapshot.js';
import type { TrafficMeter } from './TrafficMeter.js';

/**
 * Every media node's heartbeat, origin and relay alike: at the period the controller expects
 * (it may change with each registration), the traffic meter sampled at the same period, and
 * the snapshot sent through the node's control plane. `beforeBeat` lets an origin put its
 * stream records first, so that a store that lost everything knows the streams before the
 * nodes that carry them.
 */
export class NodeHeartbeat {
  readonly #node: MediaNode;
  readonly #meter: TrafficMeter;
  readonly #control: ControlPlane;
  readonly #log: Logger;
  readonly #beforeBeat: (() => Promise<void>) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #periodMs = 0;
  #lastTickAt = 0;
  #closed = false;

  constructor(node: MediaNode, meter: TrafficMeter, control: ControlPlane, deps: { logger: Logger; beforeBeat?: () => Promise<void> }) {
    this.#node = node;
    this.#meter = meter;
    this.#control = control;
    this.#log = deps.logger.child({ component: 'NodeHeartbeat' });
    this.#beforeBeat = deps.beforeBeat;
  }

  /** The period followed now (ms). */
  get periodMs(): number {
    return this.#periodMs;
  }

  start(): void {
    if (this.#closed || this.#timer) return;
    this.#schedule();
  }

  /** The controller may have given a new period (a registration): follow it from now, not after the old one. */
  retime(): void {
    if (this.#closed || !this.#timer || this.#control.heartbeatIntervalMs === this.#periodMs) return;
    clearTimeout(this.#timer);
    this.#schedule();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#meter.stop();
  }

  #schedule(): void {
    const period = this.#control.heartbeatIntervalMs;
    if (period !== this.#periodMs) {
      if (this.#periodMs) this.#log.info({ from: this.#periodMs, to: period }, "following the controller's heartbeat period");
      this.#periodMs = period;
      this.#lastTickAt = 0;
      this.#meter.stop();
      this.#meter.start(period);
    }
    this.#timer = setTimeout(() => void this.#beat(), period);
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    if (this.#closed) return;
    // The next beat is due a period from now whatever this one waits for (a controller that froze
    // answers nothing: noticing that is the next beats' job).
    this.#schedule();
    // A tick that comes late means this process stalled (GC, load): answers may still sit unread
    // in its sockets, so the controller's silence is not judged this round.
    const now = Date.now();
    const stalled = this.#lastTickAt > 0 && now - this.#lastTickAt > 2 * this.#periodMs;
    this.#lastTickAt = now;
    try {
      await this.#beforeBeat?.();
      const answer = await this.#control.heartbeat(nodeSnapshot(this.#node, this.#meter), stalled);
      for (const { streamId, nodeId } of answer.dropChildren ?? []) this.#node.dropChild(streamId, nodeId);
    } catch (err) {
      this.#log.warn({ err }, 'heartbeat failed');
    }
  }
}
