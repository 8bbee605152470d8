import type { WatchConnection } from './ViewerConnection.js';

/**
 * Resolve once the new connection can take over without a freeze: a video frame decoded
 * (browsers report framesDecoded), or, where nothing decodes (Node clients), media bytes
 * received; or after `timeoutMs`, or as soon as `giveUp()` says waiting is pointless.
 */
export async function waitForMedia(conn: WatchConnection, timeoutMs: number, giveUp: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !conn.closed && !giveUp()) {
    // Audio arrives before the first video key frame: judge by video where there is some.
    const video = conn.consumers.filter((c) => c.kind === 'video');
    for (const c of video.length > 0 ? video : conn.consumers) {
      try {
        const stats = await c.getStats();
        for (const s of stats.values() as Iterable<{ type: string; bytesReceived?: number; framesDecoded?: number }>) {
          if (s.type !== 'inbound-rtp') continue;
          // Padding probes count as bytes before any frame: trust frames where they are counted.
          if (s.framesDecoded !== undefined ? s.framesDecoded > 0 : (s.bytesReceived ?? 0) > 0) return;
        }
      } catch {
        // stats unavailable in this environment: fall through to the timeout
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
