import { randomBytes } from 'node:crypto';
import { announcedAddress, publicHttpUrl, type CascadeConfig } from '@cascade/config';
import { CascadeError, type Logger } from '@cascade/protocol';
import { RelayNode } from './RelayNode.js';

/** Build a RelayNode from the configuration (the relay's composition root, minus process concerns). */
export async function startRelay(config: Readonly<CascadeConfig>, deps: { logger: Logger; nodeId?: string }): Promise<RelayNode> {
  if (!config.relay.controllerUrl) throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', 'relay.controllerUrl is required (--controller)');
  if (!config.relay.token) throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', 'relay.token is required (--token)');
  const nodeId = deps.nodeId || defaultRelayId(config.relay.token);
  const listenIps = config.mediasoup.listenIps.map((l) => ({ ip: l.ip, announcedIp: announcedAddress(l) }));
  const relay = await RelayNode.create(
    {
      media: {
        id: nodeId,
        listenIps,
        iceServers: config.iceServers.map((s) => ({ ...s })),
        mediasoup: { ...config.mediasoup },
        signalling: { ...config.signalling },
      },
      // Viewers and child relays come from anywhere: all interfaces unless told otherwise.
      http: { ...config.http, host: config.http.host || '0.0.0.0' },
      publicUrl: config.http.publicUrl || publicHttpUrl(config, 0).replace(/:0$/, ':{port}'),
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
    deps,
  );
  return relay;
}

/**
 * `<token subject>-<random>`: readable in the topology, unique per run. The subject is read
 * without verifying the token (the controller verifies it); it only names the relay.
 */
export function defaultRelayId(token: string): string {
  let sub = 'relay';
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    if (typeof payload.sub === 'string' && payload.sub) sub = payload.sub;
  } catch {
    // not a JWT: the controller will say so
  }
  return `${sub.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 60)}-${randomBytes(3).toString('hex')}`;
}
