import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CascadeError, ReconnectPolicy } from '@cascade/protocol';
import { Broadcast } from '../src/Broadcast.js';
import { CascadeEvent, ConnectionState } from '../src/events.js';
import { AuthError, ConnectionError } from '../src/errors.js';
import type { BroadcastConnection, PublishConnectionOptions } from '../src/PublishConnection.js';

/** A connection to the origin, driven by the test: it calls back what a PublishConnection would. */
class FakePublish implements BroadcastConnection {
  readonly producers = [];
  readonly options: PublishConnectionOptions;
  closed = false;
  closes = 0;
  unpublished = 0;
  /** What unpublish() waits for (the origin's answer). */
  answer: Promise<void> = Promise.resolve();

  constructor(options: PublishConnectionOptions) {
    this.options = options;
  }

  async unpublish(): Promise<void> {
    this.unpublished++;
    await this.answer;
  }

  close(): void {
    this.closes++;
    this.closed = true;
  }

  /** The signalling closed or the media transport failed. */
  lose(err: Error): void {
    this.closed = true;
    this.options.onLost(this, err);
  }
}

/**
 * The origin a Broadcast publishes at: each attempt succeeds with a new connection unless a
 * failure was queued for it. The stream id is the one asked for, or 'stream-1'.
 */
function fakeOrigin() {
  const connections: FakePublish[] = [];
  const failures: Error[] = [];
  const open = vi.fn(async (o: PublishConnectionOptions): Promise<BroadcastConnection> => {
    const failure = failures.shift();
    if (failure) throw failure;
    o.onPublished(o.streamId ?? 'stream-1');
    const conn = new FakePublish(o);
    connections.push(conn);
    return conn;
  });
  return {
    open,
    connections,
    /** The next attempts fail with these, in order. */
    fail: (...errors: Error[]) => failures.push(...errors),
    get last(): FakePublish {
      return connections.at(-1)!;
    },
  };
}

/** Delays by retry count, then null (give up). */
const steps = (...delays: number[]): ReconnectPolicy => ({ nextRetryDelayMs: ({ retryCount }) => delays[retryCount] ?? null });

const lost = () => new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'connection closed (1006)');
const timeout = () => new ConnectionError('CASCADE_ERR_CLIENT_TIMEOUT', 'no answer');

function created(policy: ReconnectPolicy) {
  const origin = fakeOrigin();
  const broadcast = new Broadcast({ url: 'http://origin.test', token: 't', stream: {} as MediaStream, reconnectPolicy: policy }, { openConnection: origin.open });
  const events = {
    live: vi.fn(),
    reconnecting: vi.fn(),
    reconnected: vi.fn(),
    viewers: vi.fn(),
    error: vi.fn(),
    stopped: vi.fn(),
    state: vi.fn(),
  };
  broadcast.on(CascadeEvent.Live, events.live);
  broadcast.on(CascadeEvent.Reconnecting, events.reconnecting);
  broadcast.on(CascadeEvent.Reconnected, events.reconnected);
  broadcast.on(CascadeEvent.Viewers, events.viewers);
  broadcast.on(CascadeEvent.Error, events.error);
  broadcast.on(CascadeEvent.Stopped, events.stopped);
  broadcast.on(CascadeEvent.StateChanged, events.state);
  return { broadcast, origin, events };
}

async function started(policy: ReconnectPolicy) {
  const c = created(policy);
  await c.broadcast.start();
  return c;
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('Broadcast: going live and reconnecting (fake connections, fake time)', () => {
  it('start() publishes once, not as a resume, and reports Live with the stream id the origin gave', async () => {
    const { broadcast, origin, events } = await started(steps(0));
    expect(origin.open).toHaveBeenCalledTimes(1);
    expect(origin.last.options.resume).toBe(false);
    expect(origin.last.options.streamId).toBeUndefined();
    expect(broadcast.streamId).toBe('stream-1');
    expect(broadcast.state).toBe(ConnectionState.Connected);
    expect(events.state.mock.calls).toEqual([[ConnectionState.Connected]]);
    expect(events.live).toHaveBeenCalledTimes(1);
    await broadcast.stop();
  });

  it('start() that fails rejects with the error and does not retry', async () => {
    const { broadcast, origin, events } = created(steps(0, 0, 0));
    origin.fail(new AuthError('CASCADE_ERR_AUTH_INVALID_TOKEN', 'bad token'));
    await expect(broadcast.start()).rejects.toBeInstanceOf(AuthError);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(origin.open).toHaveBeenCalledTimes(1);
    expect(events.live).not.toHaveBeenCalled();
    expect(events.reconnecting).not.toHaveBeenCalled();
    expect(broadcast.state).toBe(ConnectionState.Connecting);
  });

  it('the origin’s viewer counts are reported', async () => {
    const { broadcast, origin, events } = await started(steps(0));
    origin.last.options.onViewers(3);
    expect(broadcast.viewers).toBe(3);
    expect(events.viewers).toHaveBeenCalledExactlyOnceWith(3);
    await broadcast.stop();
  });

  it('connection lost: closes it, resumes the same stream on the retry policy’s delays, then reports Reconnected with the time it took', async () => {
    const { broadcast, origin, events } = await started(steps(0, 1000, 1000));
    const first = origin.last;
    const cause = lost();
    // The immediate retry fails; the second, 1 s later, succeeds.
    origin.fail(timeout());
    first.lose(cause);
    expect(first.closes).toBe(1);
    expect(events.reconnecting).toHaveBeenCalledExactlyOnceWith(cause);
    expect(broadcast.state).toBe(ConnectionState.Reconnecting);
    await vi.advanceTimersByTimeAsync(0);
    expect(origin.open).toHaveBeenCalledTimes(2);

    await vi.advanceTimersByTimeAsync(999);
    expect(origin.open).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(origin.open).toHaveBeenCalledTimes(3);
    expect(origin.open.mock.calls.slice(1).map(([o]) => [o.resume, o.streamId])).toEqual([
      [true, 'stream-1'],
      [true, 'stream-1'],
    ]);
    expect(broadcast.state).toBe(ConnectionState.Connected);
    expect(events.reconnected).toHaveBeenCalledExactlyOnceWith(1000);
    expect(events.state.mock.calls.map(([s]) => s)).toEqual([ConnectionState.Connected, ConnectionState.Reconnecting, ConnectionState.Connected]);
    expect(events.error).not.toHaveBeenCalled();
    // Live is the start's; a reconnect is told as Reconnected.
    expect(events.live).toHaveBeenCalledTimes(1);
    await broadcast.stop();
  });

  it('a loss reported by a connection it no longer holds is ignored', async () => {
    const { broadcast, origin, events } = await started(steps(0, 0));
    const first = origin.last;
    first.lose(lost());
    await vi.advanceTimersByTimeAsync(0);
    expect(origin.open).toHaveBeenCalledTimes(2);
    first.lose(lost());
    await vi.advanceTimersByTimeAsync(1000);
    expect(origin.open).toHaveBeenCalledTimes(2);
    expect(events.reconnecting).toHaveBeenCalledTimes(1);
    expect(origin.last.closed).toBe(false);
    expect(broadcast.state).toBe(ConnectionState.Connected);
    await broadcast.stop();
  });

  it('gives up when the retry policy says stop (null): one error event, then stopped and disconnected', async () => {
    const { broadcast, origin, events } = await started(steps(0, 500));
    origin.fail(timeout(), timeout());
    origin.last.lose(lost());
    await vi.advanceTimersByTimeAsync(0);
    expect(origin.open).toHaveBeenCalledTimes(2);
    expect(events.error).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(500);
    expect(origin.open).toHaveBeenCalledTimes(3);
    expect(events.error).toHaveBeenCalledTimes(1);
    expect(events.error.mock.calls[0]![0] as CascadeError).toMatchObject({ code: 'CASCADE_ERR_CLIENT_CONNECTION', message: expect.stringContaining('gave up reconnecting') });
    expect(events.stopped).toHaveBeenCalledTimes(1);
    expect(broadcast.state).toBe(ConnectionState.Disconnected);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(origin.open).toHaveBeenCalledTimes(3);
  });

  it('an error not worth retrying (refused token) ends the reconnect at once: one error event, then stopped', async () => {
    const { broadcast, origin, events } = await started(steps(0, 1000, 1000));
    const refused = new AuthError('CASCADE_ERR_AUTH_EXPIRED_TOKEN', 'token expired');
    origin.fail(refused);
    origin.last.lose(lost());
    await vi.advanceTimersByTimeAsync(0);
    expect(events.error).toHaveBeenCalledExactlyOnceWith(refused);
    expect(events.stopped).toHaveBeenCalledTimes(1);
    expect(broadcast.state).toBe(ConnectionState.Disconnected);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(origin.open).toHaveBeenCalledTimes(2);
  });

  it('a retry policy that throws is a stop: an error event, not an unhandled rejection', async () => {
    const policy: ReconnectPolicy = {
      nextRetryDelayMs: () => {
        throw new TypeError('app bug');
      },
    };
    const { broadcast, origin, events } = await started(policy);
    origin.last.lose(lost());
    await vi.advanceTimersByTimeAsync(0);
    expect(events.error).toHaveBeenCalledTimes(1);
    expect(events.error.mock.calls[0]![0]).toMatchObject({ code: 'CASCADE_ERR_CLIENT_CONNECTION', message: expect.stringContaining('app bug') });
    expect(events.stopped).toHaveBeenCalledTimes(1);
    expect(broadcast.state).toBe(ConnectionState.Disconnected);
    expect(origin.open).toHaveBeenCalledTimes(1);
  });

  it('stop() ends the stream at the origin, then closes the connection and reports Stopped once; it is idempotent', async () => {
    const { broadcast, origin, events } = await started(steps(0));
    const conn = origin.last;
    let answer!: () => void;
    conn.answer = new Promise<void>((r) => (answer = r));
    const first = broadcast.stop();
    // Called again while the origin is being told: nothing more happens, and nothing early.
    const second = broadcast.stop();
    await vi.advanceTimersByTimeAsync(0);
    expect(conn.unpublished).toBe(1);
    expect(conn.closes).toBe(0);
    expect(events.stopped).not.toHaveBeenCalled();
    answer();
    await Promise.all([first, second]);
    await broadcast.stop();
    expect(conn.unpublished).toBe(1);
    expect(conn.closes).toBe(1);
    expect(events.stopped).toHaveBeenCalledTimes(1);
    expect(events.state.mock.calls.filter(([s]) => s === ConnectionState.Disconnected)).toHaveLength(1);
    expect(broadcast.state).toBe(ConnectionState.Disconnected);
    expect(broadcast.producers).toEqual([]);
  });

  it('stop() on a connection whose signalling is gone does not try to unpublish over it', async () => {
    const { broadcast, origin } = await started(steps(0));
    const conn = origin.last;
    conn.closed = true;
    await broadcast.stop();
    expect(conn.unpublished).toBe(0);
    expect(conn.closes).toBe(1);
  });

  it('stop() cancels the retry waiting for its delay', async () => {
    const { broadcast, origin, events } = await started(steps(0, 5000));
    origin.fail(timeout());
    origin.last.lose(lost());
    await vi.advanceTimersByTimeAsync(0);
    expect(origin.open).toHaveBeenCalledTimes(2);
    await broadcast.stop();
    expect(events.stopped).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(origin.open).toHaveBeenCalledTimes(2);
    expect(events.error).not.toHaveBeenCalled();
    expect(events.reconnected).not.toHaveBeenCalled();
  });

  it('stop() while a reconnect attempt is connecting closes the connection that arrives after', async () => {
    const { broadcast, origin, events } = await started(steps(0));
    let arrive!: () => void;
    const gate = new Promise<void>((r) => (arrive = r));
    const open = origin.open.getMockImplementation()!;
    origin.open.mockImplementationOnce(async (o) => {
      await gate;
      return open(o);
    });
    origin.last.lose(lost());
    await vi.advanceTimersByTimeAsync(0);
    await broadcast.stop();
    arrive();
    await vi.advanceTimersByTimeAsync(0);
    expect(origin.connections).toHaveLength(2);
    expect(origin.last.closes).toBe(1);
    expect(origin.last.unpublished).toBe(0);
    expect(events.reconnected).not.toHaveBeenCalled();
    expect(broadcast.state).toBe(ConnectionState.Disconnected);
  });
});
