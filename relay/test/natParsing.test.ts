import { describe, expect, it } from 'vitest';
import { parseDescription, parseSsdpReply, xmlText } from '../src/nat/UpnpIgdClient.js';
import { isNonPublicIPv4, parseProcNetRoute, parseRouteGet, parseRoutePrint } from '../src/nat/localNetwork.js';

/** What the port mapper reads from routers and from the OS, including what a broken or hostile router sends. */
describe('SSDP replies', () => {
  const reply = (location: string) => Buffer.from(`HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: ${location}\r\n\r\n`);

  it('takes an http LOCATION on the host that answered', () => {
    expect(parseSsdpReply(reply('http://192.168.1.1:5000/rootDesc.xml'), '192.168.1.1')).toBe('http://192.168.1.1:5000/rootDesc.xml');
  });

  it('ignores a LOCATION on another host, another scheme, garbage and oversized datagrams', () => {
    expect(parseSsdpReply(reply('http://10.9.9.9/rootDesc.xml'), '192.168.1.1')).toBeUndefined();
    expect(parseSsdpReply(reply('file:///etc/passwd'), '192.168.1.1')).toBeUndefined();
    expect(parseSsdpReply(reply('http://[::1'), '192.168.1.1')).toBeUndefined();
    expect(parseSsdpReply(Buffer.from('FOO * HTTP/1.1\r\n\r\n'), '192.168.1.1')).toBeUndefined();
    expect(parseSsdpReply(Buffer.from([0xff, 0x00, 0x13]), '192.168.1.1')).toBeUndefined();
    expect(parseSsdpReply(Buffer.concat([reply('http://192.168.1.1/d.xml'), Buffer.alloc(5000)]), '192.168.1.1')).toBeUndefined();
  });
});

describe('device descriptions', () => {
  const service = (type: string, control: string) => `<service><serviceType>${type}</serviceType><serviceId>x</serviceId><controlURL>${control}</controlURL><SCPDURL>/s.xml</SCPDURL></service>`;
  const desc = (services: string) => `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><serviceList>${services}</serviceList></device></root>`;

  it('finds the WAN connection service (v2 before v1) and resolves its control URL', () => {
    const xml = desc(service('urn:schemas-upnp-org:service:Layer3Forwarding:1', '/l3f') + service('urn:schemas-upnp-org:service:WANIPConnection:1', '/ctl/IPConn1') + service('urn:schemas-upnp-org:service:WANIPConnection:2', '/ctl/IPConn'));
    expect(parseDescription(xml, 'http://192.168.1.1:5000/rootDesc.xml')).toEqual({ serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2', controlUrl: 'http://192.168.1.1:5000/ctl/IPConn' });
  });

  it('takes a WANPPPConnection (DSL routers) and a URLBase', () => {
    const xml = `<root><URLBase>http://192.168.1.1:49000/</URLBase>${desc(service('urn:schemas-upnp-org:service:WANPPPConnection:1', 'upnp/control/WANPPPConn1'))}</root>`;
    expect(parseDescription(xml, 'http://192.168.1.1:49000/igddesc.xml')?.controlUrl).toBe('http://192.168.1.1:49000/upnp/control/WANPPPConn1');
  });

  it('finds nothing in garbage', () => {
    expect(parseDescription('<<<<not xml', 'http://192.168.1.1/')).toBeUndefined();
    expect(parseDescription(desc(service('urn:schemas-upnp-org:service:WANIPConnection:1', '')), 'http://192.168.1.1/')).toBeUndefined();
  });

  it('reads SOAP answers with any namespace prefix, decoding entities', () => {
    expect(xmlText('<s:Body><u:GetExternalIPAddressResponse xmlns:u="x"><NewExternalIPAddress>203.0.113.7</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body>', 'NewExternalIPAddress')).toBe('203.0.113.7');
    expect(xmlText('<m:errorDescription>a &amp; b</m:errorDescription>', 'errorDescription')).toBe('a & b');
    expect(xmlText('<a>', 'a')).toBeUndefined();
  });
});

describe('the default gateway', () => {
  it('/proc/net/route (Linux)', () => {
    const text = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' + 'eth0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' + 'eth0\t00000000\t014DA8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n';
    expect(parseProcNetRoute(text)).toBe('192.168.77.1');
    expect(parseProcNetRoute('Iface\tDestination\n')).toBeUndefined();
  });

  it('route -n get default (macOS) and route print (Windows)', () => {
    expect(parseRouteGet('   route to: default\ndestination: default\n       mask: default\n    gateway: 192.168.1.254\n  interface: en0\n')).toBe('192.168.1.254');
    expect(parseRoutePrint('IPv4 Route Table\n===\nActive Routes:\nNetwork Destination        Netmask          Gateway       Interface  Metric\n          0.0.0.0          0.0.0.0      192.168.0.1    192.168.0.23     25\n')).toBe('192.168.0.1');
  });

  it('tells private and shared (CGNAT) addresses from public ones', () => {
    for (const ip of ['10.0.0.1', '172.16.3.4', '192.168.1.1', '100.64.0.1', '100.127.255.254', 'garbage']) expect(isNonPublicIPv4(ip)).toBe(true);
    for (const ip of ['203.0.113.7', '8.8.8.8', '100.128.0.1', '172.32.0.1']) expect(isNonPublicIPv4(ip)).toBe(false);
  });
});
