import WebSocket from 'ws';
import { signallingUrl } from '@cascade/protocol';

/** The controller's path for upload tests (see the controller's UploadMeter). */
export const UPLOAD_PATH = '/control/upload';
const CHUNK = 64 * 1024;
/** Bytes allowed in the socket's queue: enough to keep a fast link busy, little enough to stop when asked. */
const MAX_QUEUED = 4 * CHUNK;

/**
 * Upload to the controller for `durationMs`, at most `kbps`: as much as this machine's link
 * carries. Resolves with the bytes handed to the socket; the controller measures what arrives.
 */
export async function runUploadTest(controllerUrl: string, options: { nonce: string; kbps: number; durationMs: number; timeoutMs: number }): Promise<number> {
  const url = new URL(signallingUrl(controllerUrl, UPLOAD_PATH));
  url.searchParams.set('nonce', options.nonce);
  const ws = new WebSocket(url.toString());
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  const budget = Math.floor((options.kbps * options.durationMs) / 8);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('upload test: cannot connect')), options.timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  let sent = 0;
  const started = Date.now();
  try {
    while (sent < budget && Date.now() - started < options.durationMs && ws.readyState === WebSocket.OPEN) {
      // Pace to kbps: never ahead of the schedule, never more queued than MAX_QUEUED.
      const due = ((Date.now() - started) * options.kbps) / 8;
      if (sent > due || ws.bufferedAmount > MAX_QUEUED) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const n = Math.min(CHUNK, budget - sent);
      ws.send(n === CHUNK ? chunk : chunk.subarray(0, n));
      sent += n;
    }
    // Let what is queued go out before closing (the controller times the last byte).
    const drainUntil = Date.now() + options.timeoutMs;
    while (ws.bufferedAmount > 0 && Date.now() < drainUntil && ws.readyState === WebSocket.OPEN) await new Promise((r) => setTimeout(r, 10));
  } finally {
    ws.close();
  }
  return sent - ws.bufferedAmount;
}
