import dgram from 'node:dgram';
import type { Logger } from '@cascade/protocol';

const PREFIX = 'CASCADE-PROBE ';

/**
 * Listens on the relay's media address for the controller's reachability probe (a UDP
 * datagram carrying a nonce) and hands the nonce on; the controller gives no traffic to a
 * relay that cannot echo it.
 */
export class ProbeResponder {
  readonly #socket: dgram.Socket;
  #port = 0;

  static async bind(ip: string, onNonce: (nonce: string) => void, deps: { logger: Logger }): Promise<ProbeResponder> {
    const r = new ProbeResponder(ip.includes(':') ? 'udp6' : 'udp4', onNonce, deps.logger);
    await new Promise<void>((resolve, reject) => {
      r.#socket.once('error', reject);
      r.#socket.bind(0, ip, () => {
        r.#socket.off('error', reject);
        resolve();
      });
    });
    r.#port = r.#socket.address().port;
    return r;
  }

  private constructor(type: 'udp4' | 'udp6', onNonce: (nonce: string) => void, log: Logger) {
    this.#socket = dgram.createSocket(type);
    this.#socket.on('error', (err) => log.warn({ err }, 'probe socket error'));
    this.#socket.on('message', (msg) => {
      if (msg.length > 200) return;
      const text = msg.toString('utf8');
      if (text.startsWith(PREFIX)) onNonce(text.slice(PREFIX.length).trim());
    });
  }

  get port(): number {
    return this.#port;
  }

  close(): void {
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
  }
}
