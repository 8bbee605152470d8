import dgram from 'node:dgram';
import { CascadeError, PROBE_PREFIX as PREFIX, type Logger } from '@cascade/protocol';

const MAX_BIND_ATTEMPTS = 50;

/**
 * Listens on the node's pipe ports for the controller's reachability probe (a UDP datagram
 * carrying a nonce) and hands the nonce on; the controller gives no traffic to a node that
 * cannot echo it (its parent's and children's pipes would not reach it either).
 */
export class ProbeResponder {
  readonly #socket: dgram.Socket;
  #port = 0;

  /**
   * Bind inside the media port range, so that the probe tests what media needs: a volunteer
   * who opened exactly those ports passes, one whose firewall blocks them does not.
   */
  static async bind(ip: string, ports: { min: number; max: number }, onNonce: (nonce: string) => void, deps: { logger: Logger }): Promise<ProbeResponder> {
    const span = ports.max - ports.min + 1;
    // From a random point of the range: relays sharing a machine (and mediasoup) take ports from it too.
    const start = Math.floor(Math.random() * span);
    let lastError: unknown;
    for (let i = 0; i < Math.min(span, MAX_BIND_ATTEMPTS); i++) {
      const port = ports.min + ((start + i) % span);
      const r = new ProbeResponder(ip.includes(':') ? 'udp6' : 'udp4', onNonce, deps.logger);
      try {
        await new Promise<void>((resolve, reject) => {
          r.#socket.once('error', reject);
          r.#socket.bind(port, ip, () => {
            r.#socket.off('error', reject);
            resolve();
          });
        });
        r.#port = port;
        return r;
      } catch (err) {
        lastError = err;
        r.close();
      }
    }
    throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', `cannot listen for the reachability probe on ${ip}, UDP ports ${ports.min}-${ports.max}: ${(lastError as Error)?.message}`, { cause: lastError });
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
