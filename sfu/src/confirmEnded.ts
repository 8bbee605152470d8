import type { ControlPlane } from './ControlPlane.js';

/** How long the controller's record may lag behind the node that saw the stream end (ms). */
const RECORD_LAG_MS = 3000;
const RECHECK_MS = 500;

/**
 * Whether a stream really ended, when a node that may lie (a relay: a parent to its child, a
 * serving relay to its viewer's front) says it did. The controller's record is the truth; the
 * origin writes it as the stream ends, so it is rechecked for a moment before the word is
 * dismissed. A controller that cannot be asked leaves the word standing: a lying relay and a
 * control-plane outage at once are needed to end a live stream for its viewers.
 */
export async function confirmEnded(control: ControlPlane, streamId: string, deps: { sleep?: (ms: number) => Promise<void> } = {}): Promise<boolean> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
  for (let waited = 0; ; waited += RECHECK_MS) {
    let state: string | undefined;
    try {
      state = (await control.getStream(streamId))?.stream.state;
    } catch {
      return true;
    }
    // Unknown: forgotten since it ended (or never existed); either way nothing is live.
    if (state === undefined || state === 'ended') return true;
    if (waited >= RECORD_LAG_MS) return false;
    await sleep(RECHECK_MS);
  }
}

/** Whether a frame from a node is its `stream.state: ended` notification (cheap test first: most frames are not). */
export function isEndedNotice(raw: string): boolean {
  if (!raw.includes('"stream.state"') || !raw.includes('"ended"')) return false;
  try {
    const msg = JSON.parse(raw) as { id?: unknown; type?: unknown; data?: { state?: unknown } };
    return msg.id === undefined && msg.type === 'stream.state' && msg.data?.state === 'ended';
  } catch {
    return false;
  }
}
