import type { types } from 'mediasoup';

/**
 * Run `consume` once for every source of a stream, including sources that appear while it
 * awaits, until none is left. The caller hands over to its `sourceadd` listener right after
 * this resolves (no await in between), so that no source is lost or taken twice.
 */
export async function consumeEachSource<T>(
  sources: () => readonly types.Producer[],
  consume: (producer: types.Producer) => Promise<T>,
): Promise<{ results: T[]; attempted: number }> {
  const done = new Set<string>();
  const results: T[] = [];
  for (;;) {
    const pending = sources().filter((s) => !done.has(s.id));
    if (pending.length === 0) break;
    for (const producer of pending) {
      done.add(producer.id);
      results.push(await consume(producer));
    }
  }
  return { results, attempted: done.size };
}
