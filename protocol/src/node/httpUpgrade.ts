import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { CascadeError, ErrorCodes, type ErrorCode } from '../errors.js';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => void;

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  426: 'Upgrade Required',
  503: 'Service Unavailable',
};

/** Refuse a WebSocket upgrade with a coded JSON body, before any WebSocket exists. */
export function rejectUpgrade(socket: Duplex, code: ErrorCode, detail?: string): void {
  const err = new CascadeError(code, detail);
  const body = JSON.stringify({ statusCode: err.status, code: err.code, message: err.message });
  const status = ErrorCodes[code].status;
  try {
    socket.end(
      `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  } catch {
    socket.destroy();
  }
}

/**
 * One 'upgrade' listener per HTTP server, dispatching by path, so that the media node's
 * `/ws` and the controller's `/control` can share a port and unknown paths get a 404.
 */
export class UpgradeRouter {
  readonly #routes = new Map<string, UpgradeHandler>();

  constructor(server: import('node:http').Server) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://localhost');
      } catch {
        rejectUpgrade(socket, 'CASCADE_ERR_HTTP_NOT_FOUND');
        return;
      }
      const handler = this.#routes.get(url.pathname);
      if (!handler) rejectUpgrade(socket, 'CASCADE_ERR_HTTP_NOT_FOUND', url.pathname);
      else handler(req, socket, head, url);
    });
  }

  route(path: string, handler: UpgradeHandler): void {
    this.#routes.set(path, handler);
  }
}
