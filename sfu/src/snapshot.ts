import os from 'node:os';
import type { CarriedStream, NodeStats } from '@cascade/protocol';
import type { MediaNode } from './MediaNode.js';
import type { TrafficMeter } from './TrafficMeter.js';

const CORES = Math.max(1, os.availableParallelism());

/** What a node reports in its heartbeat: its own count of viewers and children per stream. */
export function nodeSnapshot(node: MediaNode, meter: TrafficMeter): { stats: NodeStats; streams: CarriedStream[] } {
  const t = meter.latest;
  const streams: CarriedStream[] = node.streams
    .filter((s) => s.state !== 'ended')
    .map((s) => ({
      streamId: s.id,
      parentNodeId: s.parentNodeId,
      ...(s.parentTicket ? { pipeTicket: s.parentTicket } : {}),
      ...(s.bytesFromParent !== undefined ? { bytesFromParent: s.bytesFromParent } : {}),
      depth: s.depth,
      viewers: s.viewerCount,
      children: s.childCount,
      childNodeIds: s.childNodeIds,
      bitrateOutKbps: Math.round(t.perStream.get(s.id)?.bitrateOutKbps ?? 0),
    }));
  return {
    stats: {
      viewers: streams.reduce((n, s) => n + s.viewers, 0),
      children: streams.reduce((n, s) => n + s.children, 0),
      bitrateInKbps: Math.round(t.bitrateInKbps),
      bitrateOutKbps: Math.round(t.bitrateOutKbps),
      lossRate: Number(t.lossRate.toFixed(4)),
      cpu: Math.min(1, Number((t.cpu / CORES).toFixed(4))),
      bytesOut: t.bytesOut,
    },
    streams,
  };
}
