/**
 * UPnP-IGD client: SSDP discovery, the device description, and the WANIPConnection SOAP actions
 * a relay needs (GetExternalIPAddress, AddPortMapping, AddAnyPortMapping, DeletePortMapping).
 * IGD v1 and v2 (WANIPConnection:1/:2, WANPPPConnection:1).
 *
 * Own code rather than a library's: @achingbrain/nat-port-mapper 4.0.5 finds IGD v2 devices only,
 * its unmap() deletes with an empty protocol (against miniupnpd it removed the TCP mapping and left
 * the UDP one), and its SSDP layer throws out of a socket handler on any datagram starting with
 * an unknown method (`FOO * HTTP/1.1` to port 1900 kills the process). Here: discovery listens on an
 * ephemeral port (not 1900), every reply is parsed inside try/catch with size limits, the
 * description is fetched only from the address that answered, and every HTTP exchange has a
 * timeout and a body cap. XML is read with narrow regular expressions: we need four elements,
 * not a DOM.
 */
import dgram from 'node:dgram';
import http from 'node:http';
import { isIPv4 } from 'node:net';
import { PortMappingError, asPortMappingError } from './errors.js';
import type { MappingProtocol, RouterClient } from './PortMapperTypes.js';

const SSDP_ADDRESS = '239.255.255.250';
const SSDP_PORT = 1900;
const SEARCH_TARGETS = ['urn:schemas-upnp-org:device:InternetGatewayDevice:1', 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'];
/** Preferred first. */
const SERVICES = ['urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANIPConnection:1', 'urn:schemas-upnp-org:service:WANPPPConnection:1'];
const MAX_DESCRIPTION = 128 * 1024;
const MAX_SOAP = 32 * 1024;

export interface IgdService {
  /** Where the device answered from (descriptions and control URLs must stay on it). */
  host: string;
  location: string;
  serviceType: string;
  controlUrl: string;
}

/** The first `<tag>` text in `xml` (any namespace prefix), or undefined. */
export function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<(?:[\\w.-]+:)?${tag}(?:\\s[^>]*)?>([^<]*)</(?:[\\w.-]+:)?${tag}>`, 'i').exec(xml);
  return m ? decodeXml(m[1]!.trim()) : undefined;
}

function decodeXml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

function encodeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The WAN connection service of a device description, with its control URL resolved; undefined if it has none. */
export function parseDescription(xml: string, location: string): { serviceType: string; controlUrl: string } | undefined {
  const found: { serviceType: string; controlUrl: string }[] = [];
  const base = xmlText(xml, 'URLBase') || location;
  for (const m of xml.matchAll(/<(?:[\w.-]+:)?service(?:\s[^>]*)?>([\s\S]*?)<\/(?:[\w.-]+:)?service>/gi)) {
    const serviceType = xmlText(m[1]!, 'serviceType');
    const control = xmlText(m[1]!, 'controlURL');
    if (!serviceType || !control || !SERVICES.includes(serviceType)) continue;
    try {
      found.push({ serviceType, controlUrl: new URL(control, base).toString() });
    } catch {
      // a control URL that does not resolve: not usable
    }
  }
  found.sort((a, b) => SERVICES.indexOf(a.serviceType) - SERVICES.indexOf(b.serviceType));
  return found[0];
}

/** HTTP exchange with a timeout and a body cap; rejects with a PortMappingError. */
export function httpExchange(url: string, o: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; timeoutMs: number; maxBytes: number }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return reject(PortMappingError.malformed(`UPnP: bad URL ${url.slice(0, 100)}`));
    }
    if (u.protocol !== 'http:') return reject(PortMappingError.malformed(`UPnP: not an http URL: ${url.slice(0, 100)}`));
    const req = http.request(u, { method: o.method, headers: { ...o.headers, ...(o.body !== undefined ? { 'Content-Length': String(Buffer.byteLength(o.body)) } : {}) }, timeout: o.timeoutMs });
    const timer = setTimeout(() => req.destroy(PortMappingError.noAnswer(`UPnP: no answer from ${u.host} in ${o.timeoutMs} ms`)), o.timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(asPortMappingError(err));
    });
    req.on('timeout', () => req.destroy(PortMappingError.noAnswer(`UPnP: ${u.host} went silent`)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > o.maxBytes) req.destroy(PortMappingError.malformed(`UPnP: answer from ${u.host} larger than ${o.maxBytes} bytes`));
        else chunks.push(d);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', () => undefined);
    });
    req.end(o.body);
  });
}

/** One SSDP reply: the LOCATION header, if it names an http URL on the host that sent it. */
export function parseSsdpReply(msg: Buffer, from: string): string | undefined {
  if (msg.length > 4096) return undefined;
  const text = msg.toString('latin1');
  if (!/^HTTP\/1\.[01] 200/i.test(text)) return undefined;
  const m = /^location:[ \t]*(\S+)[ \t]*\r?$/im.exec(text);
  if (!m) return undefined;
  try {
    const u = new URL(m[1]!);
    // A device that points its description elsewhere (another host, another scheme) is not followed.
    return u.protocol === 'http:' && u.hostname === from ? u.toString() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Search the LAN on `localIp`'s interface for an Internet Gateway Device; resolves with the
 * first one whose description has a WAN connection service, or undefined after timeoutMs.
 */
export function discoverIgd(localIp: string, timeoutMs: number): Promise<IgdService | undefined> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket({ type: 'udp4' });
    const tried = new Set<string>();
    let settled = false;
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const finish = (found: IgdService | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        // closed
      }
      resolve(found);
    };
    sock.on('error', () => finish(undefined));
    sock.on('message', (msg, rinfo) => {
      try {
        const location = parseSsdpReply(msg, rinfo.address);
        if (!location || tried.has(location) || tried.size >= 8) return;
        tried.add(location);
        void httpExchange(location, { method: 'GET', timeoutMs, maxBytes: MAX_DESCRIPTION })
          .then((r) => {
            const svc = r.status === 200 ? parseDescription(r.body, location) : undefined;
            if (svc && new URL(svc.controlUrl).hostname === rinfo.address) finish({ host: rinfo.address, location, ...svc });
          })
          .catch(() => undefined);
      } catch {
        // garbage from the LAN: ignored
      }
    });
    sock.bind(0, localIp, () => {
      try {
        sock.setMulticastInterface(localIp);
        sock.setMulticastTTL(2);
        for (const st of SEARCH_TARGETS) {
          const req = `M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_ADDRESS}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ${st}\r\n\r\n`;
          sock.send(req, SSDP_PORT, SSDP_ADDRESS, () => undefined);
        }
      } catch {
        finish(undefined);
      }
    });
  });
}

/** SOAP calls to one device's WAN connection service. */
export class UpnpIgdClient implements RouterClient {
  readonly method = 'upnp' as const;
  readonly gateway: string;
  readonly internalIp: string;
  readonly service: IgdService;
  readonly #timeoutMs: number;

  constructor(service: IgdService, internalIp: string, timeoutMs: number) {
    this.service = service;
    this.gateway = service.host;
    this.internalIp = internalIp;
    this.#timeoutMs = timeoutMs;
  }

  get #v2(): boolean {
    return this.service.serviceType.endsWith(':2');
  }

  async externalIp(): Promise<string> {
    const body = await this.#soap('GetExternalIPAddress', []);
    const ip = xmlText(body, 'NewExternalIPAddress');
    if (!ip || !isIPv4(ip) || ip === '0.0.0.0') throw PortMappingError.malformed(`UPnP: external address ${JSON.stringify(ip?.slice(0, 40) ?? null)} is not an IPv4 address`);
    return ip;
  }

  async map(m: { protocol: MappingProtocol; internalPort: number; externalPort: number; leaseSeconds: number; description: string }): Promise<{ externalPort: number; leaseSeconds: number }> {
    const args = (lease: number): [string, string | number][] => [
      ['NewRemoteHost', ''],
      ['NewExternalPort', m.externalPort],
      ['NewProtocol', m.protocol.toUpperCase()],
      ['NewInternalPort', m.internalPort],
      ['NewInternalClient', this.internalIp],
      ['NewEnabled', 1],
      ['NewPortMappingDescription', m.description],
      ['NewLeaseDuration', lease],
    ];
    try {
      await this.#soap('AddPortMapping', args(m.leaseSeconds));
      return { externalPort: m.externalPort, leaseSeconds: m.leaseSeconds };
    } catch (err) {
      const code = (err as { upnpCode?: number }).upnpCode;
      // 725 OnlyPermanentLeasesSupported (some IGD v1 routers): a lease of 0, removed on close.
      if (code === 725) {
        await this.#soap('AddPortMapping', args(0));
        return { externalPort: m.externalPort, leaseSeconds: 0 };
      }
      // 718 ConflictInMappingEntry: on v2 the router may offer another external port.
      if (code === 718 && this.#v2) {
        const body = await this.#soap('AddAnyPortMapping', args(m.leaseSeconds));
        const port = Number(xmlText(body, 'NewReservedPort'));
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw PortMappingError.malformed('UPnP: AddAnyPortMapping without a valid NewReservedPort');
        return { externalPort: port, leaseSeconds: m.leaseSeconds };
      }
      if (code === 718) throw new PortMappingError('conflict', `UPnP: external port ${m.protocol.toUpperCase()} ${m.externalPort} is taken on the router`);
      throw err;
    }
  }

  async unmap(m: { protocol: MappingProtocol; externalPort: number }): Promise<void> {
    await this.#soap('DeletePortMapping', [
      ['NewRemoteHost', ''],
      ['NewExternalPort', m.externalPort],
      ['NewProtocol', m.protocol.toUpperCase()],
    ]);
  }

  close(): void {
    // Nothing held between calls.
  }

  async #soap(action: string, args: [string, string | number][]): Promise<string> {
    const st = this.service.serviceType;
    const body =
      `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">` +
      `<s:Body><u:${action} xmlns:u="${st}">${args.map(([k, v]) => `<${k}>${encodeXml(String(v))}</${k}>`).join('')}</u:${action}></s:Body></s:Envelope>\r\n`;
    const r = await httpExchange(this.service.controlUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${st}#${action}"` },
      body,
      timeoutMs: this.#timeoutMs,
      maxBytes: MAX_SOAP,
    });
    if (r.status === 200 && new RegExp(`<(?:[\\w.-]+:)?${action}Response[\\s>/]`).test(r.body)) return r.body;
    const code = Number(xmlText(r.body, 'errorCode'));
    const description = xmlText(r.body, 'errorDescription')?.slice(0, 100);
    if (Number.isInteger(code) && code > 0) {
      throw Object.assign(new PortMappingError('refused', `UPnP: ${action} refused: ${code} ${description ?? ''}`.trim()), { upnpCode: code });
    }
    throw PortMappingError.malformed(`UPnP: ${action}: HTTP ${r.status} without a SOAP answer`);
  }
}
