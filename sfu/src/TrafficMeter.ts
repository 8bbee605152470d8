import type { types } from 'mediasoup';
import type { Logger } from '@cascade/protocol';
import type { MediaNode } from './MediaNode.js';
import { upstreamOf } from './layers/LayeredSource.js';
import { LossWindow, type PacketCounts } from './LossWindow.js';

/** Loss is measured over this long (ms): several of mediasoup's receiver reports (see LossWindow). */
const LOSS_WINDOW_MS = 4000;

export interface StreamTraffic {
  bitrateInKbps: number;
  bitrateOutKbps: number;
}

export interface TrafficSample {
  bitrateInKbps: number;
  bitrateOutKbps: number;
  /** Since the node started, transports already closed included. */
  bytesIn: number;
  bytesOut: number;
  /** Upstream loss on source producers, 0..1, over the last LOSS_WINDOW_MS. */
  lossRate: number;
  /** CPU of this process and its workers, in cores, over the last period. */
  cpu: number;
  perStream: Map<string, StreamTraffic>;
}

interface Counter {
  streamId: string;
  bytesIn: number;
  bytesOut: number;
}

/**
 * Periodic traffic and CPU sampling for heartbeats and metrics: mediasoup has no push
 * statistics, so every transport is polled once per period. Closed transports' last figures
 * are kept in the totals so bytes relayed never go backwards.
 */
export class TrafficMeter {
  readonly #node: MediaNode;
  readonly #log: Logger;
  readonly #transports = new Map<types.Transport, Counter>();
  #closedBytesIn = 0;
  #closedBytesOut = 0;
  #lastBytesIn = 0;
  #lastBytesOut = 0;
  #lastAt = Date.now();
  #lastCpuMs = 0;
  readonly #loss = new LossWindow(LOSS_WINDOW_MS);
  #sample: TrafficSample = {
    bitrateInKbps: 0,
    bitrateOutKbps: 0,
    bytesIn: 0,
    bytesOut: 0,
    lossRate: 0,
    cpu: 0,
    perStream: new Map(),
  };
  #timer: ReturnType<typeof setInterval> | undefined;
  #running = false;

  constructor(node: MediaNode, deps: { logger: Logger }) {
    this.#node = node;
    this.#log = deps.logger.child({ component: 'TrafficMeter' });
    node.observer.on('newtransport', (t, router) => {
      // Loopback plumbing inside the node (a LayeredSource) carries nothing in or out.
      if (t.appData.internal) return;
      const streamId = router.appData.streamId;
      const counter: Counter = { streamId, bytesIn: 0, bytesOut: 0 };
      this.#transports.set(t, counter);
      t.observer.once('close', () => {
        this.#closedBytesIn += counter.bytesIn;
        this.#closedBytesOut += counter.bytesOut;
        this.#transports.delete(t);
      });
    });
  }

  get latest(): TrafficSample {
    return this.#sample;
  }

  start(periodMs: number): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.sample(), periodMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Take one sample now (also what the timer does). */
  async sample(): Promise<TrafficSample> {
    if (this.#running) return this.#sample;
    this.#running = true;
    try {
      const perStream = new Map<string, StreamTraffic>();
      const now = Date.now();
      const dt = Math.max(1, now - this.#lastAt) / 1000;
      await Promise.all(
        [...this.#transports].map(async ([t, c]) => {
          if (t.closed) return;
          try {
            const [s] = (await t.getStats()) as { bytesReceived: number; bytesSent: number }[];
            if (!s) return;
            const dIn = Math.max(0, s.bytesReceived - c.bytesIn);
            const dOut = Math.max(0, s.bytesSent - c.bytesOut);
            c.bytesIn = s.bytesReceived;
            c.bytesOut = s.bytesSent;
            const st = perStream.get(c.streamId) ?? { bitrateInKbps: 0, bitrateOutKbps: 0 };
            st.bitrateInKbps += (dIn * 8) / 1000 / dt;
            st.bitrateOutKbps += (dOut * 8) / 1000 / dt;
            perStream.set(c.streamId, st);
          } catch {
            // closed while polling
          }
        }),
      );
      let bytesIn = this.#closedBytesIn;
      let bytesOut = this.#closedBytesOut;
      for (const c of this.#transports.values()) {
        bytesIn += c.bytesIn;
        bytesOut += c.bytesOut;
      }
      const cpuMs = await this.#cpuMs();
      const cpu = this.#lastCpuMs > 0 ? Math.max(0, (cpuMs - this.#lastCpuMs) / 1000 / dt) : 0;
      this.#sample = {
        bitrateInKbps: Math.max(0, ((bytesIn - this.#lastBytesIn) * 8) / 1000 / dt),
        bitrateOutKbps: Math.max(0, ((bytesOut - this.#lastBytesOut) * 8) / 1000 / dt),
        bytesIn,
        bytesOut,
        lossRate: await this.#lossRate(),
        cpu,
        perStream,
      };
      this.#lastBytesIn = bytesIn;
      this.#lastBytesOut = bytesOut;
      this.#lastCpuMs = cpuMs;
      this.#lastAt = now;
    } catch (err) {
      this.#log.warn({ err }, 'traffic sample failed');
    } finally {
      this.#running = false;
    }
    return this.#sample;
  }

  async #cpuMs(): Promise<number> {
    const own = process.cpuUsage();
    let ms = (own.user + own.system) / 1000;
    for (const w of this.#node.pool.workers) {
      try {
        const u = await w.getResourceUsage();
        ms += u.ru_utime + u.ru_stime;
      } catch {
        // worker died meanwhile
      }
    }
    return ms;
  }

  async #lossRate(): Promise<number> {
    const counts = new Map<string, PacketCounts>();
    for (const stream of this.#node.streams) {
      for (const source of stream.sources) {
        // A layered source's loss is its broadcaster's, on the producer it is built on.
        const p = upstreamOf(source);
        try {
          const stats = (await p.getStats()) as { packetCount?: number; packetsLost?: number }[];
          counts.set(p.id, { received: stats.reduce((a, s) => a + (s.packetCount ?? 0), 0), lost: stats.reduce((a, s) => a + (s.packetsLost ?? 0), 0) });
        } catch {
          // closed meanwhile
        }
      }
    }
    return this.#loss.add(Date.now(), counts);
  }
}
