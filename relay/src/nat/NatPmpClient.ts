/**
 * NAT-PMP (RFC 6886) client: external address, map, unmap. Own code rather than a library's
 * because the one we tried (@achingbrain/nat-port-mapper 4.0.5) reads past the end of a short
 * reply inside its socket handler (an uncaught RangeError: any 4-byte datagram kills the process)
 * and never retransmits. Here each request has its own socket connected to the gateway (the
 * kernel drops datagrams from anyone else), is retransmitted at 250 ms doubling (RFC 6886 §3.1,
 * capped), and every reply is length-checked before it is read.
 */
import dgram from 'node:dgram';
import { PortMappingError } from './errors.js';
import type { MappingProtocol, RouterClient } from './PortMapperTypes.js';

const SERVER_PORT = 5351;
const RESULT: Record<number, string> = {
  1: 'unsupported version',
  2: 'not authorized / refused',
  3: 'network failure (the router has no internet address)',
  4: 'out of resources',
  5: 'unsupported opcode',
};

export interface NatPmpClientOptions {
  gateway: string;
  internalIp: string;
  /** Transmissions per request, 250 ms doubling between them. Default 4 (gives up after 3.75 s). */
  tries?: number;
  /** For tests: the server's port. Default 5351. */
  port?: number;
}

export class NatPmpClient implements RouterClient {
  readonly method = 'nat-pmp' as const;
  readonly gateway: string;
  readonly internalIp: string;
  readonly #tries: number;
  readonly #port: number;
  readonly #sockets = new Set<dgram.Socket>();

  constructor(o: NatPmpClientOptions) {
    this.gateway = o.gateway;
    this.internalIp = o.internalIp;
    this.#tries = Math.max(1, Math.min(o.tries ?? 4, 9));
    this.#port = o.port ?? SERVER_PORT;
  }

  async externalIp(): Promise<string> {
    const r = await this.#request(Buffer.from([0, 0]), 0, 12);
    const ip = [...r.subarray(8, 12)].join('.');
    if (ip === '0.0.0.0') throw new PortMappingError('refused', 'NAT-PMP: the router has no internet address');
    return ip;
  }

  async map(m: { protocol: MappingProtocol; internalPort: number; externalPort: number; leaseSeconds: number }): Promise<{ externalPort: number; leaseSeconds: number }> {
    const r = await this.#request(this.#mapRequest(m.protocol, m.internalPort, m.externalPort, m.leaseSeconds), m.protocol === 'udp' ? 1 : 2, 16, m.internalPort);
    const externalPort = r.readUInt16BE(10);
    const leaseSeconds = r.readUInt32BE(12);
    if (externalPort === 0 || leaseSeconds === 0) throw PortMappingError.malformed(`NAT-PMP: mapping reply with external port ${externalPort}, lifetime ${leaseSeconds} s`);
    return { externalPort, leaseSeconds };
  }

  async unmap(m: { protocol: MappingProtocol; internalPort: number }): Promise<void> {
    // RFC 6886 §3.4: lifetime 0 and suggested external port 0 delete the mapping.
    await this.#request(this.#mapRequest(m.protocol, m.internalPort, 0, 0), m.protocol === 'udp' ? 1 : 2, 16, m.internalPort);
  }

  close(): void {
    for (const s of this.#sockets) s.close();
    this.#sockets.clear();
  }

  #mapRequest(protocol: MappingProtocol, internalPort: number, externalPort: number, leaseSeconds: number): Buffer {
    const b = Buffer.alloc(12);
    b[1] = protocol === 'udp' ? 1 : 2;
    b.writeUInt16BE(internalPort, 4);
    b.writeUInt16BE(externalPort, 6);
    b.writeUInt32BE(Math.max(0, Math.min(Math.floor(leaseSeconds), 0xffffffff)), 8);
    return b;
  }

  /** Send `req` until a valid reply to opcode `op` arrives (at least `minLength` bytes, result 0). */
  #request(req: Buffer, op: number, minLength: number, internalPort?: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket('udp4');
      this.#sockets.add(sock);
      let timer: ReturnType<typeof setTimeout> | undefined;
      let sent = 0;
      let settled = false;
      const finish = (err?: Error, reply?: Buffer) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        this.#sockets.delete(sock);
        try {
          sock.close();
        } catch {
          // already closed (client closed)
        }
        if (err) reject(err);
        else resolve(reply!);
      };
      const send = () => {
        if (sent >= this.#tries) return finish(PortMappingError.noAnswer(`NAT-PMP: no answer from ${this.gateway} after ${sent} tries`));
        sock.send(req, (err) => err && finish(new PortMappingError('no-answer', `NAT-PMP: ${err.message}`, { cause: err })));
        timer = setTimeout(send, 250 * 2 ** sent++);
      };
      sock.on('message', (msg) => {
        // Anything that is not a complete answer to this request is ignored (a late reply to an
        // earlier retransmission is fine; garbage is dropped), so garbage cannot end the wait early.
        if (msg.length < minLength || msg.length > 1100 || msg[0] !== 0 || msg[1] !== 128 + op) return;
        if (internalPort !== undefined && msg.readUInt16BE(8) !== internalPort) return;
        const result = msg.readUInt16BE(2);
        if (result !== 0) return finish(new PortMappingError('refused', `NAT-PMP: ${RESULT[result] ?? `result code ${result}`}`));
        finish(undefined, msg);
      });
      // A connected socket hears ICMP port unreachable as an error: nobody serves NAT-PMP there.
      sock.on('error', (err) => finish(new PortMappingError('no-answer', `NAT-PMP: ${(err as NodeJS.ErrnoException).code ?? err.message} from ${this.gateway}`, { cause: err })));
      sock.on('close', () => finish(new PortMappingError('no-answer', 'NAT-PMP: client closed')));
      try {
        sock.connect(this.#port, this.gateway, send);
      } catch (err) {
        finish(new PortMappingError('no-network', `NAT-PMP: ${(err as Error).message}`, { cause: err }));
      }
    });
  }
}
