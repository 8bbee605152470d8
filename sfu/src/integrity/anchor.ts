import { INTEGRITY_ALGORITHM, type Logger, type NodeResult } from '@cascade/protocol';

type WatchResult = NodeResult<'stream.watch'>;

/**
 * The watch answer as the viewer gets it from the origin it talks to: whatever integrity anchor
 * the serving node put in it is dropped (a relay announcing a key is lying about the stream),
 * and the origin's own goes in, with the key from the stream's record and this origin's clock.
 */
export function withIntegrityAnchor(res: WatchResult, publicKey: string | undefined, log: Logger, now: () => number = Date.now): WatchResult {
  const { integrity: foreign, ...rest } = res;
  if (foreign) log.warn({ code: 'CASCADE_ERR_INTEGRITY_FOREIGN_KEY', nodeId: res.nodeId }, 'serving node announced a stream key: ignored');
  if (!publicKey) return rest;
  return { ...rest, integrity: { algorithm: INTEGRITY_ALGORITHM, publicKey, originTime: now() } };
}
