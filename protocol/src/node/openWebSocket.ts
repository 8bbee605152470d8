import WebSocket from 'ws';
import { CascadeError, fromWireError } from '../errors.js';
import { signallingUrl } from '../url.js';

/** Open a WebSocket from Node and wait for it; a refusal becomes a CascadeError with the server's code. */
export function openWebSocket(base: string, path: string, options: { timeoutMs?: number; maxPayload?: number } = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(signallingUrl(base, path), { maxPayload: options.maxPayload ?? 4 * 1024 * 1024 });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new CascadeError('CASCADE_ERR_CLIENT_TIMEOUT', `connecting to ${base}`));
    }, options.timeoutMs ?? 5000);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.removeAllListeners('error');
      ws.on('error', () => {});
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        let err = new CascadeError('CASCADE_ERR_CLIENT_CONNECTION', `HTTP ${res.statusCode}`);
        try {
          const j = JSON.parse(body) as { code?: unknown };
          if (j.code) err = fromWireError(j);
        } catch {
          // not our JSON: keep the generic error
        }
        reject(err);
      });
    });
    ws.once('error', (e) => {
      clearTimeout(timer);
      reject(new CascadeError('CASCADE_ERR_CLIENT_CONNECTION', `${base}: ${e.message}`, { cause: e }));
    });
  });
}
