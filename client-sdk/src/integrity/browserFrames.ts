/**
 * Frames of a browser's receivers, through encoded streams (`createEncodedStreams()`, with
 * `encodedInsertableStreams` set on the peer connection): a worker hands each frame's bytes to
 * this page and holds the frame until the page says whether to show it (or, with `hold` off,
 * lets it through at once and only reports it).
 *
 * Why not RTCRtpScriptTransform, the standard API: Chromium honours a receiver's transform only
 * when it is set while the remote description that creates the receiver is being applied (in
 * the 'track' event); mediasoup-client hands the consumer over afterwards, when a transform no
 * longer takes (measured on Chromium 156: the worker gets the event, never a frame). Encoded
 * streams can be taken at any time before the first frame, and frames wait for them.
 */

/** The worker, as source: self-contained (it runs from a blob URL, outside the bundle). */
const WORKER_SOURCE = `
'use strict';
const queues = new Map();
let nextId = 1;
function flush(q) {
  while (q.items.length > 0 && q.items[0].ok !== undefined) {
    const item = q.items.shift();
    if (item.ok) q.writer.write(item.frame).catch(() => {});
  }
}
function run(tid, hold, readable, writable) {
  const q = { items: [], writer: writable.getWriter(), hold };
  queues.set(tid, q);
  const reader = readable.getReader();
  (async () => {
    for (;;) {
      let r;
      try { r = await reader.read(); } catch (e) { return; }
      if (r.done) return;
      const frame = r.value;
      const id = nextId++;
      const data = frame.data.slice(0);
      if (q.hold) q.items.push({ id, frame, ok: undefined });
      else q.writer.write(frame).catch(() => {});
      self.postMessage({ tid, id, data }, [data]);
    }
  })();
}
self.onmessage = (event) => {
  const m = event.data;
  if (m.readable) return run(m.tid, !!m.hold, m.readable, m.writable);
  const q = queues.get(m.tid);
  if (!q) return;
  for (const item of q.items) if (item.id === m.id) { item.ok = m.ok; break; }
  flush(q);
};
`;

export interface BrowserFrame {
  /** The receiver it came from (the tid attach() returned). */
  tid: number;
  id: number;
  data: Uint8Array;
}

interface EncodedReceiver {
  createEncodedStreams(): { readable: ReadableStream; writable: WritableStream };
}

/** Whether this browser offers encoded streams on receivers. */
export function encodedStreamsAvailable(): boolean {
  const R = (globalThis as { RTCRtpReceiver?: { prototype: object } }).RTCRtpReceiver;
  return !!R && 'createEncodedStreams' in R.prototype && typeof Worker === 'function' && typeof Blob === 'function';
}

/** What the recv transport's peer connection needs for encodedStreamsAvailable() to be of use. */
export const ENCODED_STREAMS_SETTINGS = { encodedInsertableStreams: true } as const;

export class BrowserFrameSource {
  readonly #worker: Worker;
  readonly #url: string;
  #nextTid = 1;
  #closed = false;

  constructor(onFrame: (frame: BrowserFrame) => void) {
    this.#url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
    this.#worker = new Worker(this.#url);
    this.#worker.onmessage = (e: MessageEvent<{ tid: number; id: number; data: ArrayBuffer }>) => {
      if (!this.#closed) onFrame({ tid: e.data.tid, id: e.data.id, data: new Uint8Array(e.data.data) });
    };
  }

  /**
   * Route a receiver's frames through the worker (every receiver of the peer connection must be:
   * with encoded streams on, a receiver nobody reads shows nothing); returns the id its frames carry.
   */
  attach(receiver: RTCRtpReceiver, hold: boolean): number {
    const tid = this.#nextTid++;
    const { readable, writable } = (receiver as unknown as EncodedReceiver).createEncodedStreams();
    this.#worker.postMessage({ tid, hold, readable, writable }, [readable as unknown as Transferable, writable as unknown as Transferable]);
    return tid;
  }

  /** Show (or drop) a held frame. */
  decide(tid: number, id: number, ok: boolean): void {
    if (!this.#closed) this.#worker.postMessage({ tid, id, ok });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
    URL.revokeObjectURL(this.#url);
  }
}
