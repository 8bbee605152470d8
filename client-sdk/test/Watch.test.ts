import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TypedEmitter, type CascadeError, type Quality, type ReconnectPolicy, type StreamInfo } from '@cascade/protocol';
import { Watch } from '../src/Watch.js';
import { CascadeEvent, ConnectionState } from '../src/events.js';
import { CapacityError, ConnectionError } from '../src/errors.js';
import type { ViewerConnectionEvents, ViewerConnectionOptions, WatchConnection } from '../src/ViewerConnection.js';
import type { IntegrityStatus } from '../src/integrity/IntegrityVerifier.js';

const STREAM: StreamInfo = { id: 'k3v9d2xq7m', title: 't', state: 'live', createdAt: 1 };

const VERIFIED: IntegrityStatus = { state: 'verified', framesVerified: 10, framesRejected: 0, framesExpired: 0, batches: 1, batchesRefused: 0, batchBytes: 100, batchesMissed: 0, batchGapMaxMs: 0 };

/** A connection to one node, driven by the test: it emits what a ViewerConnection would. */
class FakeConnection extends TypedEmitter<ViewerConnectionEvents> implements Omit<WatchConnection, 'consumers'> {
  readonly nodeId: string;
  readonly quality: Quality;
  readonly stream = STREAM;
  readonly consumers: { kind: string; track: MediaStreamTrack; closed: boolean }[] = [];
  readonly integrity = VERIFIED;
  readonly reports: [state: string, code: string, detail?: string][] = [];
  closed = false;

  constructor(nodeId: string, options: ViewerConnectionOptions) {
    super();
    this.nodeId = nodeId;
    this.quality = options.quality;
  }

  report(state: 'tampered' | 'unverified' | 'stalled', code: string, detail?: string): void {
    this.reports.push(detail === undefined ? [state, code] : [state, code, detail]);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.safeEmit('closed', undefined);
    this.removeAllListeners();
  }

  async setQuality(): Promise<void> {}

  /** The node went away (what a ViewerConnection reports when its transport or socket fails). */
  lose(err: Error): void {
    this.closed = true;
    this.safeEmit('closed', err);
  }
}

/**
 * The nodes a Watch can join: each join gets the next node (node-1, node-2, ...) unless a
 * failure was queued for it. Records what each join asked to avoid.
 */
function fakeNodes() {
  const connections: FakeConnection[] = [];
  const failures: Error[] = [];
  const excluded: string[][] = [];
  const open = vi.fn(async (o: ViewerConnectionOptions): Promise<WatchConnection> => {
    // Copied: the Watch hands in its own list, which changes later.
    excluded.push([...o.exclude]);
    const failure = failures.shift();
    if (failure) throw failure;
    const conn = new FakeConnection(`node-${connections.length + 1}`, o);
    connections.push(conn);
    return conn as unknown as WatchConnection;
  });
  return {
    open,
    connections,
    excluded,
    /** The next joins fail with these, in order. */
    fail: (...errors: Error[]) => failures.push(...errors),
    get last(): FakeConnection {
      return connections.at(-1)!;
    },
  };
}

class FakeMediaStream {
  readonly #tracks: MediaStreamTrack[] = [];
  getTracks = () => [...this.#tracks];
  addTrack = (t: MediaStreamTrack) => void this.#tracks.push(t);
  removeTrack = (t: MediaStreamTrack) => void this.#tracks.splice(this.#tracks.indexOf(t), 1);
}

/** Delays by retry count, then null (give up). */
const steps = (...delays: number[]): ReconnectPolicy => ({ nextRetryDelayMs: ({ retryCount }) => delays[retryCount] ?? null });

const timeout = () => new ConnectionError('CASCADE_ERR_CLIENT_TIMEOUT', 'no answer');

async function started(policy: ReconnectPolicy) {
  const nodes = fakeNodes();
  const watch = new Watch({ url: 'http://origin.test', streamId: STREAM.id, reconnectPolicy: policy, MediaStream: FakeMediaStream as unknown as new () => MediaStream }, { openConnection: nodes.open });
  const events = {
    reconnecting: vi.fn(),
    reconnected: vi.fn(),
    nodechange: vi.fn(),
    error: vi.fn(),
    stopped: vi.fn(),
    state: vi.fn(),
    integrity: vi.fn(),
  };
  watch.on(CascadeEvent.Reconnecting, events.reconnecting);
  watch.on(CascadeEvent.Reconnected, events.reconnected);
  watch.on(CascadeEvent.NodeChanged, events.nodechange);
  watch.on(CascadeEvent.Error, events.error);
  watch.on(CascadeEvent.Stopped, events.stopped);
  watch.on(CascadeEvent.StateChanged, events.state);
  watch.on(CascadeEvent.Integrity, events.integrity);
  await watch.start();
  return { watch, nodes, events };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('Watch: moving and reconnecting (fake connections, fake time)', () => {
  it('start() joins one node and reports it', async () => {
    const { watch, nodes, events } = await started(steps(0));
    expect(watch.state).toBe(ConnectionState.Connected);
    expect(watch.nodeId).toBe('node-1');
    expect(nodes.open).toHaveBeenCalledTimes(1);
    expect(events.nodechange).toHaveBeenCalledWith('node-1', 'joined');
    watch.stop();
  });

  it('every node full at the join: tried again every 500 ms for 3 s (a mover holds two places for a moment), then the CapacityError', async () => {
    const full = () => new CapacityError('CASCADE_ERR_NODE_CAPACITY', 'no node has room for this viewer');
    const nodes = fakeNodes();
    const make = () => new Watch({ url: 'http://origin.test', streamId: STREAM.id, MediaStream: FakeMediaStream as unknown as new () => MediaStream }, { openConnection: nodes.open });
    nodes.fail(full(), full());
    const joining = make().start();
    await vi.advanceTimersByTimeAsync(1000);
    expect((await joining).nodeId).toBe('node-1');
    expect(nodes.open).toHaveBeenCalledTimes(3);
    nodes.fail(...Array.from({ length: 20 }, full));
    const refused = make().start().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(5000);
    expect(await refused).toBeInstanceOf(CapacityError);
    // The join at 0 and a retry every 500 ms up to 3 s.
    expect(nodes.open).toHaveBeenCalledTimes(3 + 7);
  });

  it('signal lost with the media still up: joins again, keeping the node (not avoided), and closes the old connection once switched', async () => {
    const { watch, nodes, events } = await started(steps(0));
    const first = nodes.last;
    first.safeEmit('signallost', new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'endpoint went away'));
    await vi.advanceTimersByTimeAsync(0);
    expect(nodes.open).toHaveBeenCalledTimes(2);
    expect(nodes.excluded[1]).toEqual([]);
    expect(watch.nodeId).toBe('node-2');
    expect(first.closed).toBe(true);
    expect(events.nodechange).toHaveBeenLastCalledWith('node-2', 'signal lost');
    // A move, not a reconnect: the viewer saw no interruption.
    expect(events.reconnecting).not.toHaveBeenCalled();
    expect(watch.state).toBe(ConnectionState.Connected);
    watch.stop();
  });

  it('signal lost and the join fails: reconnects on the retry policy’s delays, then reports Reconnected with the time it took', async () => {
    const { watch, nodes, events } = await started(steps(0, 1000, 1000));
    const lost = new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'endpoint went away');
    // The move's join, then the first (immediate) retry fail; the second retry, 1 s later, succeeds.
    nodes.fail(timeout(), timeout());
    nodes.last.safeEmit('signallost', lost);
    await vi.advanceTimersByTimeAsync(0);
    expect(events.reconnecting).toHaveBeenCalledWith(lost);
    expect(watch.state).toBe(ConnectionState.Reconnecting);
    expect(nodes.open).toHaveBeenCalledTimes(3);

    await vi.advanceTimersByTimeAsync(999);
    expect(nodes.open).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(nodes.open).toHaveBeenCalledTimes(4);
    expect(watch.state).toBe(ConnectionState.Connected);
    expect(watch.nodeId).toBe('node-2');
    expect(events.reconnected).toHaveBeenCalledExactlyOnceWith(1000);
    expect(events.nodechange).toHaveBeenLastCalledWith('node-2', 'reconnected');
    expect(events.error).not.toHaveBeenCalled();
    watch.stop();
  });

  it('a node that vanished is avoided by the reconnect', async () => {
    const { watch, nodes, events } = await started(steps(0));
    nodes.last.lose(timeout());
    await vi.advanceTimersByTimeAsync(0);
    expect(events.reconnecting).toHaveBeenCalledTimes(1);
    expect(nodes.excluded[1]).toEqual(['node-1']);
    expect(watch.nodeId).toBe('node-2');
    watch.stop();
  });

  it('a draining node: moves to another (make-before-break), avoiding it, and closes it after', async () => {
    const { watch, nodes, events } = await started(steps(0));
    const draining = nodes.last;
    draining.safeEmit('draining');
    await vi.advanceTimersByTimeAsync(0);
    expect(nodes.excluded[1]).toEqual(['node-1']);
    expect(watch.nodeId).toBe('node-2');
    expect(draining.closed).toBe(true);
    expect(events.nodechange).toHaveBeenLastCalledWith('node-2', 'draining');
    expect(events.reconnecting).not.toHaveBeenCalled();
    watch.stop();
  });

  it('frames that do not verify: reports the node to the origin, tells the app, and moves away from it', async () => {
    const { watch, nodes, events } = await started(steps(0));
    const tampering = nodes.last;
    const alarm: IntegrityStatus = { ...VERIFIED, state: 'tampered', code: 'CASCADE_ERR_INTEGRITY_FRAME_MISMATCH', detail: '3 frames', framesRejected: 3 };
    tampering.safeEmit('integrity', alarm);
    expect(events.integrity).toHaveBeenLastCalledWith({ ...alarm, nodeId: 'node-1' });
    expect(tampering.reports).toEqual([['tampered', 'CASCADE_ERR_INTEGRITY_FRAME_MISMATCH', '3 frames']]);
    await vi.advanceTimersByTimeAsync(0);
    expect(nodes.excluded[1]).toEqual(['node-1']);
    expect(watch.nodeId).toBe('node-2');
    expect(tampering.closed).toBe(true);
    watch.stop();
  });

  it('gives up when the retry policy says stop (null): one error event, then stopped and disconnected', async () => {
    const { watch, nodes, events } = await started(steps(0, 500));
    nodes.fail(timeout(), timeout());
    nodes.last.lose(timeout());
    await vi.advanceTimersByTimeAsync(0);
    expect(nodes.open).toHaveBeenCalledTimes(2);
    expect(events.error).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(500);
    expect(nodes.open).toHaveBeenCalledTimes(3);
    expect(events.error).toHaveBeenCalledTimes(1);
    const err = events.error.mock.calls[0]![0] as CascadeError;
    expect(err).toMatchObject({ code: 'CASCADE_ERR_CLIENT_CONNECTION', message: expect.stringContaining('gave up reconnecting') });
    expect(events.stopped).toHaveBeenCalledTimes(1);
    expect(watch.state).toBe(ConnectionState.Disconnected);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(nodes.open).toHaveBeenCalledTimes(3);
  });

  it('a retry policy that throws is a stop: an error event, not an unhandled rejection', async () => {
    const policy: ReconnectPolicy = {
      nextRetryDelayMs: () => {
        throw new TypeError('app bug');
      },
    };
    const { watch, nodes, events } = await started(policy);
    nodes.last.lose(timeout());
    await vi.advanceTimersByTimeAsync(0);
    expect(events.error).toHaveBeenCalledTimes(1);
    expect(events.error.mock.calls[0]![0]).toMatchObject({ code: 'CASCADE_ERR_CLIENT_CONNECTION', message: expect.stringContaining('app bug') });
    expect(events.stopped).toHaveBeenCalledTimes(1);
    expect(watch.state).toBe(ConnectionState.Disconnected);
    expect(nodes.open).toHaveBeenCalledTimes(1);
  });

  it('stop() is idempotent and cancels the retry waiting for its delay', async () => {
    const { watch, nodes, events } = await started(steps(0, 5000));
    nodes.fail(timeout());
    nodes.last.lose(timeout());
    await vi.advanceTimersByTimeAsync(0);
    expect(nodes.open).toHaveBeenCalledTimes(2);
    watch.stop();
    watch.stop();
    expect(events.stopped).toHaveBeenCalledTimes(1);
    expect(events.state.mock.calls.filter(([s]) => s === ConnectionState.Disconnected)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(nodes.open).toHaveBeenCalledTimes(2);
    expect(events.error).not.toHaveBeenCalled();
  });

  it('stop() while a move is joining closes the connection that arrives after', async () => {
    const { watch, nodes } = await started(steps(0));
    let arrive!: () => void;
    const gate = new Promise<void>((r) => (arrive = r));
    const open = nodes.open.getMockImplementation()!;
    nodes.open.mockImplementationOnce(async (o) => {
      await gate;
      return open(o);
    });
    const first = nodes.last;
    first.safeEmit('draining');
    await vi.advanceTimersByTimeAsync(0);
    watch.stop();
    expect(first.closed).toBe(true);
    arrive();
    await vi.advanceTimersByTimeAsync(0);
    expect(nodes.connections).toHaveLength(2);
    expect(nodes.last.closed).toBe(true);
    expect(watch.nodeId).toBeUndefined();
  });

  it('a move asked for while a move is joining is ignored: one new connection, the first move’s reason', async () => {
    const { watch, nodes, events } = await started(steps(0));
    const arrive = gateNextJoin(nodes);
    const first = nodes.last;
    first.safeEmit('draining');
    await vi.advanceTimersByTimeAsync(0);
    first.safeEmit('suspect');
    first.safeEmit('stalled', 'nothing decoded for 1200 ms');
    await vi.advanceTimersByTimeAsync(0);
    expect(nodes.open).toHaveBeenCalledTimes(2);
    arrive();
    await vi.advanceTimersByTimeAsync(0);
    expect(watch.nodeId).toBe('node-2');
    expect(events.nodechange).toHaveBeenLastCalledWith('node-2', 'draining');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(nodes.open).toHaveBeenCalledTimes(2);
    expect(nodes.connections).toHaveLength(2);
    expect(events.nodechange).toHaveBeenCalledTimes(2);
    watch.stop();
  });

  it('the node lost while a move is joining: the move’s connection takes over, no reconnect', async () => {
    const { watch, nodes, events } = await started(steps(0));
    const arrive = gateNextJoin(nodes);
    const first = nodes.last;
    first.safeEmit('suspect');
    await vi.advanceTimersByTimeAsync(0);
    first.lose(timeout());
    await vi.advanceTimersByTimeAsync(0);
    // Still joining: nothing else is tried meanwhile.
    expect(nodes.open).toHaveBeenCalledTimes(2);
    expect(events.reconnecting).not.toHaveBeenCalled();
    arrive();
    await vi.advanceTimersByTimeAsync(0);
    expect(watch.nodeId).toBe('node-2');
    expect(events.nodechange).toHaveBeenLastCalledWith('node-2', 'unresponsive');
    expect(events.reconnecting).not.toHaveBeenCalled();
    expect(events.state).not.toHaveBeenCalledWith(ConnectionState.Reconnecting);
    expect(watch.state).toBe(ConnectionState.Connected);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(nodes.open).toHaveBeenCalledTimes(2);
    watch.stop();
  });

  it('the node lost while a move is joining, and the move fails: a reconnect follows, avoiding the lost node', async () => {
    const { watch, nodes, events } = await started(steps(0));
    const arrive = gateNextJoin(nodes, timeout());
    const first = nodes.last;
    first.safeEmit('suspect');
    await vi.advanceTimersByTimeAsync(0);
    const gone = timeout();
    first.lose(gone);
    await vi.advanceTimersByTimeAsync(0);
    expect(events.reconnecting).not.toHaveBeenCalled();
    arrive();
    await vi.advanceTimersByTimeAsync(0);
    expect(events.reconnecting).toHaveBeenCalledExactlyOnceWith(gone);
    expect(nodes.open).toHaveBeenCalledTimes(3);
    expect(nodes.excluded.at(-1)).toEqual(['node-1']);
    expect(watch.nodeId).toBe('node-2');
    expect(events.nodechange).toHaveBeenLastCalledWith('node-2', 'reconnected');
    expect(events.reconnected).toHaveBeenCalledTimes(1);
    expect(watch.state).toBe(ConnectionState.Connected);
    watch.stop();
  });

  it('signal lost while a move is joining, and the move fails: a reconnect follows', async () => {
    const { watch, nodes, events } = await started(steps(0));
    const arrive = gateNextJoin(nodes, timeout());
    const first = nodes.last;
    first.safeEmit('draining');
    await vi.advanceTimersByTimeAsync(0);
    const gone = new ConnectionError('CASCADE_ERR_CLIENT_CONNECTION', 'endpoint went away');
    first.safeEmit('signallost', gone);
    await vi.advanceTimersByTimeAsync(0);
    expect(nodes.open).toHaveBeenCalledTimes(2);
    arrive();
    await vi.advanceTimersByTimeAsync(0);
    expect(events.reconnecting).toHaveBeenCalledExactlyOnceWith(gone);
    expect(nodes.open).toHaveBeenCalledTimes(3);
    expect(watch.nodeId).toBe('node-2');
    expect(events.nodechange).toHaveBeenLastCalledWith('node-2', 'reconnected');
    watch.stop();
  });
});

/**
 * The next join waits until the returned function is called, then succeeds as usual or, given
 * `failure`, fails with it.
 */
function gateNextJoin(nodes: ReturnType<typeof fakeNodes>, failure?: Error): () => void {
  let arrive!: () => void;
  const gate = new Promise<void>((r) => (arrive = r));
  const open = nodes.open.getMockImplementation()!;
  nodes.open.mockImplementationOnce(async (o) => {
    await gate;
    if (failure) throw failure;
    return open(o);
  });
  return arrive;
}

describe('Watch: a node that leaves us without video', () => {
  type Fake = { kind: string; track: MediaStreamTrack; closed: boolean };
  /** The node announces a video consumer on `conn`. */
  const add = (conn: FakeConnection, id: string): Fake => {
    const c = { kind: 'video', track: { id, kind: 'video', stop: () => {} } as unknown as MediaStreamTrack, closed: false };
    conn.consumers.push(c);
    conn.emit('consumer', c as never);
    return c;
  };
  /** The node closes it (its source replaced, or audio chosen). */
  const remove = (conn: FakeConnection, c: Fake): void => {
    c.closed = true;
    conn.consumers.splice(conn.consumers.indexOf(c), 1);
    conn.emit('consumerclosed', c as never);
  };

  it('its video consumer closed and no other came within 1.5 s: reported as stalled, and the Watch moves away', async () => {
    const { watch, nodes, events } = await started(steps(0));
    const first = nodes.last;
    remove(first, add(first, 'v'));
    await vi.advanceTimersByTimeAsync(1400);
    expect(nodes.open).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(first.reports).toEqual([['stalled', 'CASCADE_ERR_INTEGRITY_STALLED', 'no video consumer 1500 ms after the node closed ours']]);
    expect(nodes.open).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(5000);
    expect(events.nodechange).toHaveBeenLastCalledWith('node-2', 'stalled');
    expect(nodes.excluded.at(-1)).toContain('node-1');
    watch.stop();
  });

  it('the replacement came (before or after the close), or the viewer chose audio: nothing happens', async () => {
    const { watch, nodes } = await started(steps(0));
    const conn = nodes.last;
    // After the close.
    remove(conn, add(conn, 'a'));
    await vi.advanceTimersByTimeAsync(300);
    const b = add(conn, 'b');
    await vi.advanceTimersByTimeAsync(3000);
    // Before it.
    const c = add(conn, 'c');
    remove(conn, b);
    await vi.advanceTimersByTimeAsync(3000);
    // Audio only: the node closes the video on purpose.
    watch.setQuality('audio');
    remove(conn, c);
    await vi.advanceTimersByTimeAsync(3000);
    expect(conn.reports).toEqual([]);
    expect(nodes.open).toHaveBeenCalledTimes(1);
    watch.stop();
  });
});

describe('Watch: the track shown', () => {
  it('where nothing decodes (Node), a track is shown and announced as soon as its consumer exists, before the join resolves, and once', async () => {
    const nodes = fakeNodes();
    const track = { id: 'v1', kind: 'video', stop: () => {} } as unknown as MediaStreamTrack;
    const consumer = { kind: 'video', track, closed: false };
    const open = vi.fn(async (o: ViewerConnectionOptions): Promise<WatchConnection> => {
      // The connection hands its consumer over before its resume (and before open resolves).
      o.onConsumer?.(consumer as never);
      const conn = (await nodes.open(o)) as unknown as FakeConnection;
      conn.consumers.push(consumer);
      return conn as unknown as WatchConnection;
    });
    const watch = new Watch({ url: 'http://origin.test', streamId: STREAM.id, MediaStream: FakeMediaStream as unknown as new () => MediaStream }, { openConnection: open });
    const tracks = vi.fn();
    const atTrack: (string | undefined)[] = [];
    watch.on(CascadeEvent.Track, (...args) => (tracks(...args), atTrack.push(watch.nodeId)));
    await watch.start();
    expect(tracks).toHaveBeenCalledTimes(1);
    expect(tracks).toHaveBeenCalledWith(track, consumer);
    // Announced before the connection was adopted.
    expect(atTrack).toEqual([undefined]);
    expect(watch.mediaStream.getTracks()).toEqual([track]);
    watch.stop();
  });

  it('where nothing decodes, a move that fails after showing its track early shows the current node’s tracks again', async () => {
    const nodes = fakeNodes();
    const track = (id: string, kind = 'video') => ({ id, kind, stop: () => {} }) as unknown as MediaStreamTrack;
    const mine = [{ kind: 'audio', track: track('a1', 'audio'), closed: false }, { kind: 'video', track: track('v1'), closed: false }];
    const theirs = [{ kind: 'audio', track: track('a2', 'audio'), closed: false }, { kind: 'video', track: track('v2'), closed: false }];
    const open = vi.fn(async (o: ViewerConnectionOptions): Promise<WatchConnection> => {
      const joins = open.mock.calls.length;
      const consumers = joins === 1 ? mine : theirs;
      for (const c of consumers) o.onConsumer?.(c as never);
      // The second join shows its tracks, then fails (its video consumer's resume went unanswered).
      if (joins === 2) throw timeout();
      const conn = (await nodes.open(o)) as unknown as FakeConnection;
      conn.consumers.push(...consumers);
      return conn as unknown as WatchConnection;
    });
    const watch = new Watch({ url: 'http://origin.test', streamId: STREAM.id, MediaStream: FakeMediaStream as unknown as new () => MediaStream }, { openConnection: open });
    const tracks = vi.fn();
    watch.on(CascadeEvent.Track, tracks);
    await watch.start();
    nodes.last.safeEmit('suspect');
    await vi.advanceTimersByTimeAsync(0);
    expect(open).toHaveBeenCalledTimes(2);
    expect(watch.nodeId).toBe('node-1');
    expect(watch.mediaStream.getTracks()).toEqual([mine[0]!.track, mine[1]!.track]);
    expect(tracks).toHaveBeenLastCalledWith(mine[1]!.track, mine[1]);
    watch.stop();
  });

  it('a replacement shown before the consumer it replaced: once that one closes, the live one is shown again', async () => {
    const { watch, nodes } = await started(steps(0));
    const conn = nodes.last;
    const track = (id: string) => ({ id, kind: 'video' }) as unknown as MediaStreamTrack;
    const replacement = { kind: 'video', track: track('new'), closed: false };
    const replaced = { kind: 'video', track: track('old'), closed: false };
    const tracks = vi.fn();
    watch.on(CascadeEvent.Track, tracks);
    // The node replaced its source while the subscription was on its way; the old consumer came last.
    conn.consumers.push(replacement, replaced);
    conn.emit('consumer', replacement as never);
    conn.emit('consumer', replaced as never);
    expect(watch.mediaStream.getTracks()).toEqual([replaced.track]);
    // Its source is gone: the node closes it.
    replaced.closed = true;
    conn.consumers.splice(conn.consumers.indexOf(replaced), 1);
    conn.emit('consumerclosed', replaced as never);
    expect(watch.mediaStream.getTracks()).toEqual([replacement.track]);
    expect(tracks).toHaveBeenLastCalledWith(replacement.track, replacement);
    // A closed consumer that is not shown changes nothing.
    conn.emit('consumerclosed', { kind: 'video', track: track('other'), closed: true } as never);
    expect(watch.mediaStream.getTracks()).toEqual([replacement.track]);
  });
});
