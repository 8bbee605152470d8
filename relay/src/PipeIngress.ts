import type { types } from 'mediasoup';
import {
  NodeRequests,
  Notifications,
  Peer,
  TypedEmitter,
  type Logger,
  type PipeProducerInfo,
} from '@cascade/protocol';
import { confirmEnded, pipeTransportOptions, type ControlPlane, type LocalStream, type MediaNode } from '@cascade/sfu';

export interface PipeIngressOptions {
  stream: LocalStream;
  parent: { nodeId: string };
  ticket: string;
  /** No media from the parent for this long while the stream is live → parent lost. */
  stallTimeoutMs: number;
  timeoutMs: number;
  /** Ask the parent to hold the video until releaseVideo() (viewers here are about to move onto this pipe). */
  holdVideo?: boolean;
  /** With holdVideo: once released, the lowest layer comes alone for a moment (see LOWEST_ALONE_MS). */
  lowestFirst?: boolean;
}

export type PipeIngressEvents = {
  /** The parent went away (connection closed, or media stalled). Emitted once. */
  lost: [reason: string];
  /** The parent's media stopped for SILENT_MS while the stream is live (once per silence): it may have frozen. */
  silent: [];
  listenererror: [event: string, error: unknown];
};

/**
 * Media stopped this long on a live stream (ms): the parent may be frozen. The lowest video
 * layer and the audio always flow (two hundred packets a second and more on a pipe), so a pause
 * this long is not jitter or loss; the controller checks the parent before anything moves, and a
 * parent that answers it is left alone (the broadcaster may be pausing). On the path of every
 * viewer below a frozen relay: at 250 ms, a child's new parent came 390 ms after the freeze in
 * the inner-freeze benchmark, and its viewers' first picture a key frame slot (350 ms) later.
 */
const SILENT_MS = 150;

/**
 * A held video whose viewers' pictures stopped (a new parent: see StreamPuller) starts with its
 * lowest layer alone for this long (ms), the others only then. All released together, each
 * layer's first key frame raced the others to this relay: its viewers' consumers, whose own layer
 * (the lowest, see ViewerLayers) had carried nothing yet, took whichever came first, often the
 * 720p one (traced in the inner-freeze benchmark: every viewer started on layer 1 or 2), a key
 * frame several times larger to send and to decode; with it, all 40 started on layer 0. Not for
 * a first pull: its viewers' step up to the upper layers came 250 ms later, and with them the
 * key frames that ramp asks for, into the moments a failover's viewers asked for theirs (Chrome
 * sends none within 300 ms of the last): flat-tree kills measured a key frame slot (350 ms)
 * late in 8 of 20 rounds, and a frozen leaf's viewers, moving to a first pull, 0.96 s at p95
 * against 0.69 s without.
 */
const LOWEST_ALONE_MS = 250;

/** Live producers one pipe may bring (a stream's sources, with room for a broadcaster's replacements in flight). */
const MAX_PIPE_PRODUCERS = 8;

type ParentPeer = Peer<Record<string, never>, typeof NodeRequests, typeof Notifications>;

/**
 * The child side of a relay pipe: pulls one stream from one parent over an SRTP
 * PipeTransport, its signalling carried to the parent through the controller (neither relay
 * needs a port for it). Its producers become the stream's sources only on adopt(), so a
 * planned move can check that the new pipe carries media before the old one is dropped.
 *
 * The signalling session may go quiet while the control plane is away: only the parent
 * closing it, or its media stalling, counts as losing the parent.
 */
export class PipeIngress extends TypedEmitter<PipeIngressEvents> {
  readonly parentId: string;
  readonly #ticket: string;
  readonly #stream: LocalStream;
  readonly #pipe: types.PipeTransport;
  readonly #peer: ParentPeer;
  readonly #log: Logger;
  /** Parent's producer id → our pipe producer. */
  readonly #producers = new Map<string, types.Producer>();
  /** The parent's digest channel, as it arrives on this pipe. */
  #digests: types.DataProducer | undefined;
  #adopted = false;
  /** The parent holds our video until we ask for layers (see releaseVideo()). */
  #videoHeld: boolean;
  /** releaseVideo() was called: the lowest layer flows, the others follow (see LOWEST_ALONE_MS). */
  #releasing = false;
  readonly #lowestFirst: boolean;
  /** The parent's media has been quiet for SILENT_MS (and has not come back since). */
  #silent = false;
  #closed = false;
  #stallTimer: ReturnType<typeof setInterval> | undefined;

  static async open(node: MediaNode, control: ControlPlane, options: PipeIngressOptions, deps: { logger: Logger }): Promise<PipeIngress> {
    const { stream, parent } = options;
    const router = await stream.router.primary();
    const listen = node.pipeListenIp;
    const pipe = await router.createPipeTransport(pipeTransportOptions(listen, { streamId: stream.id, parentId: parent.nodeId }));
    let peer: ParentPeer | undefined;
    try {
      const tunnel = control.openTunnel(parent.nodeId, { remoteAddress: '' });
      peer = new Peer({ channel: tunnel, inbound: {}, outbound: NodeRequests, notifications: Notifications, ignoreUnknownNotifications: true, requestTimeoutMs: options.timeoutMs });
      const asked = stream.layers.value;
      const res = await peer.request('pipe.open', {
        ticket: options.ticket,
        streamId: stream.id,
        ip: listen.announcedIp,
        port: pipe.tuple.localPort,
        srtpParameters: pipe.srtpParameters as { cryptoSuite: string; keyBase64: string },
        // Only the layers someone here wants; pipe.layers asks for more when that changes.
        maxSpatialLayer: asked,
        ...(options.holdVideo ? { holdVideo: true } : {}),
      });
      await pipe.connect({ ip: res.ip, port: res.port, srtpParameters: res.srtpParameters as types.SrtpParameters });
      const ingress = new PipeIngress(stream, pipe, peer, parent.nodeId, control, options, deps.logger);
      if (stream.layers.value !== asked) ingress.#onDemand(stream.layers.value);
      for (const info of res.producers) await ingress.#produce(info);
      if (res.integrity) {
        const d = res.integrity;
        ingress.#digests = await pipe.produceData({ sctpStreamParameters: d.sctpStreamParameters as types.SctpStreamParameters, label: d.label, protocol: d.protocol });
      }
      stream.setDepth(res.depth);
      if (res.state === 'ended') void ingress.#ended(control);
      else stream.setState(res.state);
      return ingress;
    } catch (err) {
      pipe.close();
      peer?.close();
      throw err;
    }
  }

  private constructor(
    stream: LocalStream,
    pipe: types.PipeTransport,
    peer: ParentPeer,
    parentId: string,
    control: ControlPlane,
    options: PipeIngressOptions,
    logger: Logger,
  ) {
    super();
    this.#stream = stream;
    this.#pipe = pipe;
    this.#peer = peer;
    this.parentId = parentId;
    this.#ticket = options.ticket;
    this.#videoHeld = options.holdVideo === true;
    this.#lowestFirst = options.lowestFirst === true;
    this.#log = logger.child({ component: 'PipeIngress', streamId: stream.id, parentId });
    peer.on('close', (code, reason) => this.#lose(`parent session closed (${code}${reason ? ` ${reason}` : ''})`));
    pipe.observer.once('close', () => this.#lose('pipe transport closed'));
    peer.on('notification', (type, data) => {
      switch (type) {
        case 'pipe.producer.new':
          void this.#produce(data as PipeProducerInfo).catch((err) => this.#log.warn({ err }, 'cannot pipe new producer'));
          break;
        case 'pipe.producer.closed':
          this.#producers.get((data as { producerId: string }).producerId)?.close();
          break;
        case 'stream.state': {
          const state = (data as { state: LocalStream['state'] }).state;
          if (state !== 'ended') stream.setState(state);
          else void this.#ended(control);
          break;
        }
        case 'pipe.depth':
          stream.setDepth((data as { depth: number }).depth);
          break;
      }
    });
    this.#watchStall(options.stallTimeoutMs);
    stream.layers.on('change', this.#onDemand);
  }

  /** What viewers and children here want of the video layers changed: tell the parent (releaseVideo() will, while held). */
  readonly #onDemand = (maxSpatialLayer: number): void => {
    if (this.#closed || this.#videoHeld) return;
    this.#peer.request('pipe.layers', { maxSpatialLayer }).catch((err: unknown) => this.#log.debug({ err }, 'parent did not take the layer demand'));
  };

  /**
   * Have the parent start the video it holds (a pipe opened with holdVideo); idempotent. With
   * lowestFirst, the lowest layer comes alone for LOWEST_ALONE_MS, then the layers wanted here.
   */
  releaseVideo(): void {
    if (!this.#videoHeld || this.#releasing) return;
    this.#releasing = true;
    if (!this.#lowestFirst) {
      this.#videoHeld = false;
      return this.#onDemand(this.#stream.layers.value);
    }
    this.#peer.request('pipe.layers', { maxSpatialLayer: 0 }).catch((err: unknown) => this.#log.debug({ err }, 'parent did not take the layer demand'));
    setTimeout(() => {
      this.#videoHeld = false;
      this.#onDemand(this.#stream.layers.value);
    }, LOWEST_ALONE_MS).unref();
  }

  /** Whether the parent's media has stopped for a while (it may be frozen: see 'silent'). */
  get silent(): boolean {
    return this.#silent;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The stream's digest channel from this parent (undefined: it sends none). */
  get digests(): types.DataProducer | undefined {
    return this.#digests;
  }

  /** The digest batches the parent passed on during the last second (see integrity.recent). */
  async recentDigests(): Promise<string[]> {
    return (await this.#peer.request('integrity.recent', {})).recent;
  }

  /** Make this pipe's producers the stream's sources (replacing those of a previous parent). */
  adopt(): void {
    if (this.#closed || this.#adopted) return;
    this.#adopted = true;
    this.#stream.parentNodeId = this.parentId;
    this.#stream.parentTicket = this.#ticket;
    this.#stream.bytesFromParent = 0;
    // Video first: the viewers here take each new source's consumer one after the other, and
    // the new parent's video waits for theirs (see StreamPuller's hold); audio needs no key frame.
    const producers = [...this.#producers.values()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'video' ? -1 : 1));
    for (const p of producers) if (!p.closed) this.#stream.setSource(p);
  }

  /** Resolve once any pipe producer received RTP (or after timeoutMs): make-before-break. */
  async waitForMedia(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed && Date.now() < deadline) {
      if ((await this.#bytes()) > 0) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#stallTimer);
    this.#stream.layers.off('change', this.#onDemand);
    this.#pipe.close();
    this.#peer.close(1000, 'relay left this parent');
    this.#producers.clear();
    this.removeAllListeners();
  }

  /** The parent says the stream ended: believed once the controller agrees; a parent that lies is left. */
  async #ended(control: ControlPlane): Promise<void> {
    if (await confirmEnded(control, this.#stream.id)) {
      this.#stream.setState('ended');
      return;
    }
    this.#log.warn({ parentId: this.parentId }, 'parent says the stream ended; the controller says it did not: leaving this parent');
    this.#lose('parent sent a false end of stream');
  }

  async #produce(info: PipeProducerInfo): Promise<void> {
    if (this.#closed || this.#producers.has(info.id)) return;
    if (this.#producers.size >= MAX_PIPE_PRODUCERS) {
      // A stream has a few sources (audio, video, a screen): a parent announcing more is not a parent to keep.
      this.#lose(`parent announced more than ${MAX_PIPE_PRODUCERS} producers`);
      return;
    }
    // A fresh local id: after a move, the old parent's producers may still exist in this worker.
    const producer = await this.#pipe.produce({
      kind: info.kind,
      rtpParameters: info.rtpParameters as types.RtpParameters,
      paused: info.paused,
    });
    this.#producers.set(info.id, producer);
    producer.observer.once('close', () => {
      if (this.#producers.get(info.id) === producer) this.#producers.delete(info.id);
    });
    if (this.#adopted) this.#stream.setSource(producer);
  }

  async #bytes(): Promise<number> {
    let n = 0;
    for (const p of this.#producers.values()) {
      try {
        for (const s of (await p.getStats()) as { byteCount?: number }[]) n += s.byteCount ?? 0;
      } catch {
        // closed meanwhile
      }
    }
    return n;
  }

  #watchStall(stallTimeoutMs: number): void {
    let last = -1;
    let lastChange = Date.now();
    let silenceReported = false;
    const period = Math.min(SILENT_MS / 3, Math.max(50, Math.floor(stallTimeoutMs / 4)));
    this.#stallTimer = setInterval(() => {
      void this.#bytes().then((bytes) => {
        if (this.#closed) return;
        // What this parent sent since its pipe opened: the child's confirmation in heartbeats (credits).
        if (this.#adopted) this.#stream.bytesFromParent = bytes;
        if (bytes !== last) {
          last = bytes;
          lastChange = Date.now();
          silenceReported = this.#silent = false;
          return;
        }
        // Silence is normal while the broadcaster is away; only a live stream must flow.
        if (this.#stream.state !== 'live' || this.#producers.size === 0) return;
        const quiet = Date.now() - lastChange;
        if (quiet > stallTimeoutMs) this.#lose(`no media from parent for ${stallTimeoutMs} ms`);
        else if (quiet > SILENT_MS && !silenceReported) {
          silenceReported = this.#silent = true;
          this.safeEmit('silent');
        }
      });
    }, period);
    this.#stallTimer.unref();
  }

  #lose(reason: string): void {
    if (this.#closed) return;
    this.#log.warn({ reason }, 'parent lost');
    this.safeEmit('lost', reason);
    this.close();
  }
}
