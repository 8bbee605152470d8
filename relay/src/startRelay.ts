import { isIP } from 'node:net';
import { announcedAddress, type CascadeConfig } from '@cascade/config';
import { CascadeError, type Logger } from '@cascade/protocol';
import { relayIdFor } from '@cascade/protocol/node';
import { createPortMapper, type PortMapper } from './nat/index.js';
import { defaultGateway, isNonPublicIPv4, localAddressTowards } from './nat/localNetwork.js';
import { RelayNode } from './RelayNode.js';
import { StatusPage } from './StatusPage.js';

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * The address viewers and other relays reach this relay's media on, when the volunteer did not
 * say: the one the controller sees this machine connect from (behind a home router, the
 * router's public address; on a LAN, the machine's own), else the host's first external
 * address (also when the controller sees loopback: the same machine, where both announce that).
 */
export async function discoverMediaIp(controllerUrl: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetch(new URL('/api/whoami', controllerUrl), { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { address?: unknown };
    if (typeof body.address !== 'string' || !isIP(body.address)) return undefined;
    return body.address === '::1' || body.address.startsWith('127.') ? undefined : body.address;
  } catch {
    return undefined;
  }
}

/**
 * Ask the home router to forward the media port and the pipe ports (UPnP-IGD, then NAT-PMP)
 * before anything listens: the address it answers with is what the relay announces. Only with a
 * fixed media port (a port the router can be told about) and unless turned off.
 */
async function mapPorts(config: Readonly<CascadeConfig>, deps: { logger: Logger; onStatus?: (message: string) => void }): Promise<PortMapper | undefined> {
  const m = config.mediasoup;
  if (!config.relay.portMapping || m.mediaPort <= 0) return undefined;
  // A machine whose own address is public has no home router to ask.
  const gateway = await defaultGateway().catch(() => undefined);
  const own = gateway ? await localAddressTowards(gateway).catch(() => undefined) : undefined;
  if (own && !isNonPublicIPv4(own)) return undefined;
  const mapper = await createPortMapper(
    { mediaPort: m.mediaPort, pipePorts: { min: m.rtcMinPort, max: Math.min(m.rtcMaxPort, m.rtcMinPort + 31) } },
    { logger: deps.logger },
  );
  mapper.on('mapped', (s) => deps.onStatus?.(s.message));
  mapper.on('failed', (s) => deps.onStatus?.(s.message));
  if (mapper.status.state === 'mapped' || mapper.status.state === 'failed') deps.onStatus?.(mapper.status.message);
  return mapper;
}

/** A relay process's parts: the relay, and what the process holds around it. */
export interface RunningRelay {
  readonly relay: RelayNode;
  /** Its /healthz and /metrics. */
  readonly status: StatusPage;
  /** The home router's forwarding of its ports, kept open while it runs. */
  readonly portMapper: PortMapper | undefined;
  /** The relay, then the port mapping and the status page; idempotent. */
  close(): Promise<void>;
}

/**
 * The relay's composition root, minus what only a process does (argv, signals, exit): the
 * port mapping, the media address, the RelayNode and its status page, from the configuration.
 */
export async function startRelay(
  config: Readonly<CascadeConfig>,
  deps: { logger: Logger; nodeId?: string; mediaIp?: string; onPortMapping?: (message: string) => void },
): Promise<RunningRelay> {
  if (!config.relay.controllerUrl) throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', 'relay.controllerUrl is required (--controller)');
  if (!config.relay.token) throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', 'relay.token is required (--token)');
  if (config.mediasoup.mediaPort < 0) throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', 'a relay needs a media port (--media-port)');
  const nodeId = deps.nodeId || defaultRelayId(config.relay.token);
  const mapper = await mapPorts(config, { logger: deps.logger, ...(deps.onPortMapping ? { onStatus: deps.onPortMapping } : {}) });
  // The router's internet address, when it gave one that the internet can reach.
  const routerIp = mapper?.status.state === 'mapped' && !mapper.status.behindAnotherNat ? mapper.status.externalIp : undefined;
  const listenIps = await Promise.all(
    config.mediasoup.listenIps.map(async (l, i) => {
      if (l.announcedIp || !WILDCARDS.has(l.ip)) return { ip: l.ip, announcedIp: i === 0 && routerIp && !l.announcedIp ? routerIp : announcedAddress(l) };
      const found = i === 0 ? (deps.mediaIp ?? routerIp ?? (await discoverMediaIp(config.relay.controllerUrl, config.signalling.requestTimeoutMs))) : undefined;
      return { ip: l.ip, announcedIp: found ?? announcedAddress(l) };
    }),
  );
  let relay: RelayNode | undefined;
  try {
    relay = await createRelayNode(config, { logger: deps.logger, nodeId, listenIps });
    // The status page is the volunteer's own: loopback unless told otherwise (nobody else needs to reach a relay but for media).
    const status = await StatusPage.listen(relay, { ...config.http, host: config.http.host || '127.0.0.1' }, deps);
    const node = relay;
    let closing: Promise<void> | undefined;
    return {
      relay: node,
      status,
      portMapper: mapper,
      close: () =>
        (closing ??= (async () => {
          await node.close();
          await mapper?.close();
          await status.close();
        })()),
    };
  } catch (err) {
    await relay?.close();
    await mapper?.close();
    throw err;
  }
}

function createRelayNode(
  config: Readonly<CascadeConfig>,
  deps: { logger: Logger; nodeId: string; listenIps: { ip: string; announcedIp: string }[] },
): Promise<RelayNode> {
  const { nodeId, listenIps } = deps;
  return RelayNode.create(
    {
      media: {
        id: nodeId,
        listenIps,
        iceServers: config.iceServers.map((s) => ({ ...s })),
        mediasoup: { ...config.mediasoup },
        signalling: { ...config.signalling },
      },
      controllerUrl: config.relay.controllerUrl,
      token: config.relay.token,
      capacity: {
        maxViewers: config.relay.maxViewers,
        maxChildren: config.relay.maxChildren,
        upKbps: config.relay.upKbps,
        downKbps: config.relay.downKbps,
      },
      heartbeatIntervalMs: config.topology.heartbeatIntervalMs,
      lingerMs: config.relay.lingerMs,
      stallTimeoutMs: config.relay.stallTimeoutMs,
      drainTimeoutMs: config.relay.drainTimeoutMs,
      requestTimeoutMs: config.signalling.requestTimeoutMs,
    },
    { logger: deps.logger },
  );
}

/**
 * relayIdFor() the token's subject. The subject is read without verifying the token (the
 * controller verifies it); it only names the relay.
 */
export function defaultRelayId(token: string): string {
  let sub = 'relay';
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    if (typeof payload.sub === 'string' && payload.sub) sub = payload.sub;
  } catch {
    // not a JWT: the controller will say so
  }
  return relayIdFor(sub);
}
