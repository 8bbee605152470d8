import type { Logger } from '@cascade/protocol';
import type { UpgradeRouter } from '@cascade/protocol/node';
import { announcedAddress, type CascadeConfig } from '@cascade/config';
import type { CreditService, TokenService } from '@cascade/controller';
import { OriginNode } from '../origin/OriginNode.js';
import { originControlPlane, type ControllerParts } from './controlPlane.js';

/** The origin media node from the configuration, with viewers' receipts wired to the credits when they live here. */
export function startOrigin(
  config: Readonly<CascadeConfig>,
  deps: { logger: Logger; upgrades: UpgradeRouter; tokens: TokenService; parts: ControllerParts | undefined; credits: CreditService | undefined; publicUrl: string },
): Promise<OriginNode> {
  const { logger: log, parts, credits } = deps;
  let origin: OriginNode | undefined;
  const listenIps = config.mediasoup.listenIps.map((l) => ({ ip: l.ip, announcedIp: announcedAddress(l) }));
  const created = OriginNode.create(
    {
      media: {
        id: config.nodeId,
        listenIps,
        iceServers: config.iceServers.map((s) => ({ ...s })),
        mediasoup: { ...config.mediasoup },
        signalling: { ...config.signalling },
      },
      ...(config.integrity.enabled ? { integrity: { batchIntervalMs: config.integrity.batchIntervalMs, probeMs: config.integrity.probeMs } } : {}),
      publisher: {
        maxStreams: config.origin.maxStreams,
        maxStreamsPerOwner: config.origin.maxStreamsPerOwner,
        reconnectGraceMs: config.origin.reconnectGraceMs,
        keyFrameRequestDelayMs: config.origin.keyFrameRequestDelayMs,
        layerKeyFrameRequestDelayMs: config.origin.layerKeyFrameRequestDelayMs,
        viewerCountIntervalMs: 2000,
      },
      ...(credits && parts
        ? {
            receipts: {
              intervalMs: config.credits.receiptIntervalMs,
              onPlaced: (session, streamId, nodeId) => {
                credits.viewerPlaced({ session: session.id, streamId, nodeId }).catch((err) => log.warn({ err }, 'cannot record a placement for credits'));
              },
              onReceipt: async (session, receipt) => {
                // One account of what the node serving this session delivered: for its health (only
                // about the node the session really is on), and for credits (which check that too).
                if (receipt.nodeId === (session.forwardedTo ?? config.nodeId)) parts.controller.viewerReport(session.id, receipt.nodeId, receipt);
                return (await credits.receipt(session.id, receipt)).counted > 0;
              },
            },
          }
        : {}),
    },
    {
      logger: log,
      upgrades: deps.upgrades,
      tokens: deps.tokens,
      ...(parts ? { ticketPublicKey: parts.controller.ticketPublicKey } : {}),
      control: originControlPlane(config, { logger: log, tokens: deps.tokens, parts, publicUrl: deps.publicUrl, meter: () => origin?.meter }),
    },
  );
  return created.then((o) => (origin = o));
}
