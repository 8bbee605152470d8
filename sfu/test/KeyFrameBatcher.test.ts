import { afterEach, describe, expect, it, vi } from 'vitest';
import { KeyFrameBatcher } from '../src/KeyFrameBatcher.js';

describe('KeyFrameBatcher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Resolution times (fake clock) of `join()` calls made at the given offsets. */
  async function resolvedAt(batcher: KeyFrameBatcher, calls: Array<[at: number, streamId: string]>, runFor: number): Promise<number[]> {
    vi.useFakeTimers();
    const start = Date.now();
    const times: number[] = new Array(calls.length).fill(-1);
    for (const [i, [at, streamId]] of calls.entries()) {
      setTimeout(() => void batcher.join(streamId).then(() => (times[i] = Date.now() - start)), at);
    }
    await vi.advanceTimersByTimeAsync(runFor);
    return times;
  }

  it('viewers arriving within the gather time all go together when it ends', async () => {
    const times = await resolvedAt(new KeyFrameBatcher(250), [[0, 's'], [100, 's'], [240, 's']], 1000);
    expect(times).toEqual([250, 250, 250]);
  });

  it('a viewer arriving after a batch went opens the next batch', async () => {
    const times = await resolvedAt(new KeyFrameBatcher(250), [[0, 's'], [300, 's'], [400, 's']], 1000);
    expect(times).toEqual([250, 550, 550]);
  });

  it('streams are gathered separately', async () => {
    const times = await resolvedAt(new KeyFrameBatcher(250), [[0, 'a'], [200, 'b']], 1000);
    expect(times).toEqual([250, 450]);
  });

  it('0 lets everyone go at once', async () => {
    const times = await resolvedAt(new KeyFrameBatcher(0), [[0, 's'], [10, 's']], 100);
    expect(times).toEqual([0, 10]);
  });
});
