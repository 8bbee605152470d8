/**
 * One receive-only viewer in its own process, for the failover benchmark: viewers of a real
 * audience sit on their own machines and reconnect in parallel, whereas werift viewers sharing
 * the benchmark's thread would do their DTLS handshakes one after the other.
 *
 * argv: <url> <streamId>. Sends { t: 'start', at }, then { t: 'frame', at, key, track } per
 * complete video frame and { t: 'node', id, at } per node change; exits on 'stop' or when the
 * parent goes away.
 */
import { CascadeEvent } from '@cascade/client-sdk';
import { startNodeViewer } from '@cascade/testing';

export type FailoverViewerMessage =
  | { t: 'start'; at: number }
  | { t: 'ready'; nodeId: string }
  | { t: 'frame'; at: number; key: boolean; track: number }
  | { t: 'node'; id: string; at: number }
  | { t: 'error'; message: string };

const send = (m: FailoverViewerMessage) => process.send?.(m);
const [url, streamId] = process.argv.slice(2);
process.on('disconnect', () => process.exit(0));
send({ t: 'start', at: Date.now() });
try {
  const v = await startNodeViewer(url!, streamId!);
  v.onFrame = (at, key, track) => send({ t: 'frame', at, key, track });
  v.watch.on(CascadeEvent.NodeChanged, (id) => send({ t: 'node', id, at: Date.now() }));
  process.on('message', (m) => {
    if (m !== 'stop') return;
    v.stop();
    process.exit(0);
  });
  send({ t: 'ready', nodeId: v.watch.nodeId ?? '' });
} catch (err) {
  send({ t: 'error', message: (err as Error).message });
  process.exit(1);
}
