/**
 * One receive-only viewer in its own process, for the failover benchmark: viewers of a real
 * audience sit on their own machines and reconnect in parallel, whereas werift viewers sharing
 * the benchmark's thread would do their DTLS handshakes one after the other.
 *
 * argv: <url> <streamId>. Sends { t: 'start', at }, then { t: 'frame', at, key, track } per
 * complete video frame and { t: 'node', id, at } per node change; answers 'report' with what its
 * SDK said (node changes and their reasons, reconnect causes, warnings: why a failover never
 * ended); answers 'lag' with the longest its event loop was held up since the last 'lag' (a
 * viewer starved of CPU by the machine the benchmark shares); exits on 'stop' or when the parent
 * goes away.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CascadeEvent } from '@cascade/client-sdk';
import { startNodeViewer } from '@cascade/testing';

export type FailoverViewerMessage =
  | { t: 'start'; at: number }
  | { t: 'ready'; nodeId: string }
  | { t: 'frame'; at: number; key: boolean; track: number }
  | { t: 'node'; id: string; at: number }
  | { t: 'report'; lines: string[] }
  | { t: 'lag'; maxMs: number }
  | { t: 'error'; message: string };

const send = (m: FailoverViewerMessage) => process.send?.(m);
const [url, streamId] = process.argv.slice(2);
process.on('disconnect', () => process.exit(0));
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
send({ t: 'start', at: Date.now() });
try {
  const v = await startNodeViewer(url!, streamId!);
  v.onFrame = (at, key, track) => send({ t: 'frame', at, key, track });
  v.watch.on(CascadeEvent.NodeChanged, (id) => send({ t: 'node', id, at: Date.now() }));
  process.on('message', (m) => {
    if (m === 'report') {
      const c = v.counters;
      // Integrity alarms first, each as "alarm: …" (the benchmark counts them: every relay here is honest).
      const alarms = c.integrity.filter((i) => i.state === 'unverified' || i.state === 'tampered').map((i) => `alarm: ${new Date(i.at).toISOString().slice(11, 23)} ${i.state} on ${i.nodeId}: ${i.code ?? ''} ${i.detail ?? ''} (${i.counts})`);
      send({ t: 'report', lines: [...alarms, `nodes ${c.nodeIds.map((id, i) => `${id} (${c.nodeReasons[i]})`).join(', ')}`, `frames ${c.frames}, key frames ${c.keyframes}, video tracks ${v.videoTracks}`, ...c.reconnectCauses.map((r) => `reconnect: ${r}`), ...c.warnings] });
      return;
    }
    if (m === 'lag') {
      send({ t: 'lag', maxMs: Math.round(loop.max / 1e6) });
      loop.reset();
      return;
    }
    if (m !== 'stop') return;
    v.stop();
    process.exit(0);
  });
  send({ t: 'ready', nodeId: v.watch.nodeId ?? '' });
} catch (err) {
  send({ t: 'error', message: (err as Error).message });
  process.exit(1);
}
