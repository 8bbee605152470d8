import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CascadeError, DefaultReconnectPolicy, silentLogger } from '@cascade/protocol';
import { ParentLossReporter } from '../src/ParentLossReporter.js';

/** No jitter, so the delays are exact: 0, then 100, 200, 400 ms. */
const policy = new DefaultReconnectPolicy({ initialDelayMs: 0, baseDelayMs: 100, maxDelayMs: 400, jitter: 0, maxElapsedMs: Infinity });

function setup(report = vi.fn(async (_streamId: string, _parentNodeId: string) => {})) {
  const reporter = new ParentLossReporter({ policy }, { logger: silentLogger, report });
  return { reporter, report };
}

describe('ParentLossReporter', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('reports the first loss at once and each further failure of the episode after a longer wait', async () => {
    const { reporter, report } = setup();
    reporter.lost('s1', 'pA');
    await vi.advanceTimersByTimeAsync(0);
    expect(report).toHaveBeenCalledTimes(1);
    expect(report).toHaveBeenLastCalledWith('s1', 'pA');
    // The controller offers the same broken parent again (nobody else has room).
    reporter.cancel('s1');
    reporter.lost('s1', 'pA');
    await vi.advanceTimersByTimeAsync(99);
    expect(report).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(report).toHaveBeenCalledTimes(2);
    reporter.lost('s1', 'pB');
    await vi.advanceTimersByTimeAsync(199);
    expect(report).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(report).toHaveBeenLastCalledWith('s1', 'pB');
    reporter.close();
  });

  it('a pipe that carries the stream ends the episode: the next loss is reported at once', async () => {
    const { reporter, report } = setup();
    reporter.lost('s1', 'pA');
    await vi.advanceTimersByTimeAsync(0);
    reporter.lost('s1', 'pA');
    reporter.recovered('s1'); // the report waiting is dropped with the episode
    await vi.advanceTimersByTimeAsync(1000);
    expect(report).toHaveBeenCalledTimes(1);
    reporter.lost('s1', 'pC');
    await vi.advanceTimersByTimeAsync(0);
    expect(report).toHaveBeenCalledTimes(2);
    expect(report).toHaveBeenLastCalledWith('s1', 'pC');
    reporter.close();
  });

  it('a report the controller did not get is sent again, with backoff, until one gets through', async () => {
    const report = vi.fn(async (_s: string, _p: string) => {});
    report.mockRejectedValueOnce(new CascadeError('CASCADE_ERR_CONTROLLER_UNAVAILABLE')).mockRejectedValueOnce(new CascadeError('CASCADE_ERR_CLIENT_TIMEOUT'));
    const { reporter } = setup(report);
    reporter.lost('s1', 'pA');
    await vi.advanceTimersByTimeAsync(0);
    expect(report).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(report).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(200);
    expect(report).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(5000);
    expect(report).toHaveBeenCalledTimes(3);
    reporter.close();
  });

  it('losses of several streams are reported independently; close() drops whatever is waiting', async () => {
    const { reporter, report } = setup();
    reporter.lost('s1', 'pA');
    reporter.lost('s2', 'pA');
    await vi.advanceTimersByTimeAsync(0);
    expect(report.mock.calls.map((c) => c[0]).sort()).toEqual(['s1', 's2']);
    reporter.cancel('s1');
    reporter.lost('s1', 'pA');
    reporter.close();
    reporter.close();
    reporter.lost('s3', 'pA');
    await vi.advanceTimersByTimeAsync(1000);
    expect(report).toHaveBeenCalledTimes(2);
  });
});
