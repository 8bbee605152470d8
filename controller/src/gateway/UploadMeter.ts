import { randomBytes } from 'node:crypto';
import { WebSocketServer, type RawData } from 'ws';
import type { Logger } from '@cascade/protocol';
import { rejectUpgrade, type UpgradeRouter } from '@cascade/protocol/node';

export const UPLOAD_PATH = '/control/upload';

interface Expected {
  resolve: (kbps: number | undefined) => void;
  timer: ReturnType<typeof setTimeout>;
  bytes: number;
  first: number;
  last: number;
}

/**
 * Measures a relay's upload at admission: the relay opens a WebSocket here with the nonce the
 * controller gave it and sends as fast as its link lets it, up to what it declared; what
 * arrives, over the time it took, is its upload as seen from the controller. TCP through any
 * proxy in front, so a volunteer opens no extra port for it.
 */
export class UploadMeter {
  readonly #wss: WebSocketServer;
  readonly #log: Logger;
  readonly #expected = new Map<string, Expected>();

  constructor(upgrades: UpgradeRouter, deps: { logger: Logger }) {
    this.#log = deps.logger.child({ component: 'UploadMeter' });
    // One test is a few MB at most, in frames of 64 KiB.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024, clientTracking: true });
    upgrades.route(UPLOAD_PATH, (req, socket, head, url) => {
      const nonce = url.searchParams.get('nonce') ?? '';
      const e = this.#expected.get(nonce);
      if (!e) return rejectUpgrade(socket, 'CASCADE_ERR_AUTH_FORBIDDEN', 'no upload test expected');
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => ws.terminate());
        ws.on('message', (data: RawData) => {
          const now = performance.now();
          if (e.first === 0) e.first = now;
          e.last = now;
          e.bytes += Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer).byteLength;
        });
        ws.on('close', () => this.#finish(nonce));
      });
    });
  }

  /**
   * A nonce for one test and the measure it will give: kbit/s from the first byte to the last,
   * or undefined when too little arrived to tell (under 50 ms of data) or nothing by timeoutMs.
   */
  expect(timeoutMs: number): { nonce: string; result: Promise<number | undefined> } {
    const nonce = randomBytes(16).toString('base64url');
    const result = new Promise<number | undefined>((resolve) => {
      const timer = setTimeout(() => this.#finish(nonce), timeoutMs);
      timer.unref();
      this.#expected.set(nonce, { resolve, timer, bytes: 0, first: 0, last: 0 });
    });
    return { nonce, result };
  }

  close(): void {
    for (const nonce of [...this.#expected.keys()]) this.#finish(nonce);
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }

  #finish(nonce: string): void {
    const e = this.#expected.get(nonce);
    if (!e) return;
    this.#expected.delete(nonce);
    clearTimeout(e.timer);
    const ms = e.last - e.first;
    const kbps = ms >= 50 ? (e.bytes * 8) / ms : undefined;
    this.#log.debug({ bytes: e.bytes, ms: Math.round(ms), kbps }, 'upload test done');
    e.resolve(kbps);
  }
}
