import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConnectionError, ProtocolError, StreamNotFoundError } from '../src/errors.js';
import { SignalClient } from '../src/SignalClient.js';

type Listener = (ev: Record<string, unknown>) => void;

/** A WebSocket double: what the client sends is answered by `server(msg)`. */
function fakeSocket(server: (msg: { id: number; type: string; data: unknown }, reply: (o: unknown) => void) => void) {
  const sockets: FakeWs[] = [];
  class FakeWs {
    readyState = 0;
    url: string;
    #listeners = new Map<string, Listener[]>();
    constructor(url: string) {
      this.url = url;
      sockets.push(this);
      queueMicrotask(() => {
        this.readyState = 1;
        this.emit('open', {});
      });
    }
    addEventListener(type: string, l: Listener) {
      this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), l]);
    }
    removeEventListener(type: string, l: Listener) {
      this.#listeners.set(type, (this.#listeners.get(type) ?? []).filter((x) => x !== l));
    }
    emit(type: string, ev: Record<string, unknown>) {
      for (const l of this.#listeners.get(type) ?? []) l(ev);
    }
    send(text: string) {
      server(JSON.parse(text), (o) => queueMicrotask(() => this.emit('message', { data: JSON.stringify(o) })));
    }
    close(code = 1000, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      queueMicrotask(() => this.emit('close', { code, reason }));
    }
  }
  return { WebSocket: FakeWs as unknown as new (url: string) => WebSocket, sockets };
}

describe('SignalClient', () => {
  it('connects to /ws with the protocol version and resolves validated results', async () => {
    const { WebSocket, sockets } = fakeSocket((m, reply) => reply({ v: 1, id: m.id, ok: true, data: { id: 't1', iceParameters: {}, iceCandidates: [], dtlsParameters: { fingerprints: [{ algorithm: 'sha-256', value: 'AA' }] } } }));
    const c = await SignalClient.connect('https://live.example.org/some/page', { WebSocket });
    expect(sockets[0]!.url).toBe('wss://live.example.org/ws?v=1');
    await expect(c.request('transport.create', { direction: 'recv' })).resolves.toMatchObject({ id: 't1' });
  });

  it('turns error replies into typed errors', async () => {
    const { WebSocket } = fakeSocket((m, reply) => reply({ v: 1, id: m.id, ok: false, error: { code: 'CASCADE_ERR_STREAM_NOT_FOUND', message: 'stream not found: x' } }));
    const c = await SignalClient.connect('http://h:1', { WebSocket });
    await expect(c.request('stream.watch', { streamId: 'xyz' })).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it('rejects a reply that does not match the protocol', async () => {
    const { WebSocket } = fakeSocket((m, reply) => reply({ v: 1, id: m.id, ok: true, data: { nonsense: true } }));
    const c = await SignalClient.connect('http://h:1', { WebSocket });
    await expect(c.request('stream.watch', { streamId: 'xyz' })).rejects.toBeInstanceOf(ProtocolError);
  });

  it('delivers known notifications and skips unknown ones', async () => {
    const { WebSocket, sockets } = fakeSocket(() => {});
    const c = await SignalClient.connect('http://h:1', { WebSocket });
    const seen: unknown[] = [];
    c.onNotification('stream.state', (d) => seen.push(d));
    sockets[0]!.emit('message', { data: JSON.stringify({ v: 1, type: 'stream.state', data: { streamId: 'abc', state: 'ended' } }) });
    sockets[0]!.emit('message', { data: JSON.stringify({ v: 1, type: 'future.thing', data: {} }) });
    expect(seen).toEqual([{ streamId: 'abc', state: 'ended' }]);
  });

  it('fails pending requests with ConnectionError when the socket closes', async () => {
    const { WebSocket, sockets } = fakeSocket(() => {});
    const c = await SignalClient.connect('http://h:1', { WebSocket });
    const p = c.request('stream.watch', { streamId: 'xyz' });
    sockets[0]!.close(1006, '');
    await expect(p).rejects.toBeInstanceOf(ConnectionError);
    expect(c.closed).toBe(true);
  });
});

describe('SignalClient keep-alive', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A node that answers pings while `alive.value`; `replyWith` shapes the answer. */
  function node(alive: { value: boolean }, replyWith: (id: number) => unknown = (id) => ({ v: 1, id, ok: true, data: {} })) {
    const pings: number[] = [];
    const fake = fakeSocket((m, reply) => {
      if (m.type !== 'session.ping') return;
      pings.push(Date.now());
      if (alive.value) reply(replyWith(m.id));
    });
    return { ...fake, pings };
  }

  async function connect(WebSocket: new (url: string) => WebSocket, keepAlive?: { intervalMs: number; suspectAfterMs?: number; deadAfterMs: number } | false) {
    const c = await SignalClient.connect('http://h:1', { WebSocket, ...(keepAlive !== undefined ? { keepAlive } : {}) });
    const closed: Array<[number, string]> = [];
    c.on('close', (code, reason) => closed.push([code, reason]));
    return { c, closed };
  }

  it('a node that answers stays connected; pings go out only while nothing else is heard', async () => {
    vi.useFakeTimers();
    const alive = { value: true };
    const { WebSocket, pings } = node(alive);
    const { c, closed } = await connect(WebSocket);
    let suspicions = 0;
    c.on('suspect', () => suspicions++);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(closed).toEqual([]);
    expect(c.closed).toBe(false);
    expect(suspicions).toBe(0);
    // One per 200 ms of silence at most, so 10 s hold about 50 pings (not one per timer tick of a busy node).
    expect(pings.length).toBeGreaterThanOrEqual(24);
    expect(pings.length).toBeLessThanOrEqual(51);
  });

  it('answeredPingSentAt: when the latest ping the node answered had left; a ping it leaves unanswered moves it no further', async () => {
    vi.useFakeTimers();
    const alive = { value: true };
    const { WebSocket, pings } = node(alive);
    const { c } = await connect(WebSocket);
    expect(c.answeredPingSentAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1000);
    expect(c.answeredPingSentAt).toBe(pings.at(-1));
    alive.value = false;
    const last = c.answeredPingSentAt;
    await vi.advanceTimersByTimeAsync(600);
    expect(pings.at(-1)!).toBeGreaterThan(last!);
    expect(c.answeredPingSentAt).toBe(last);
    c.close();
  });

  it('a node that stops answering is suspect after suspectAfterMs, once, well before it is closed', async () => {
    vi.useFakeTimers();
    const alive = { value: true };
    const { WebSocket } = node(alive);
    const { c, closed } = await connect(WebSocket);
    const suspectedAt: number[] = [];
    c.on('suspect', () => suspectedAt.push(Date.now()));
    await vi.advanceTimersByTimeAsync(3000);
    alive.value = false;
    const frozenAt = Date.now();
    await vi.advanceTimersByTimeAsync(1000);
    expect(suspectedAt).toHaveLength(1);
    // A ping goes out within 2 intervals of silence, suspicion 500 ms later, at a tick.
    expect(suspectedAt[0]! - frozenAt).toBeLessThanOrEqual(1000);
    expect(closed).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(suspectedAt).toHaveLength(1);
    expect(closed).toEqual([[4504, 'CASCADE_ERR_CLIENT_TIMEOUT']]);
  });

  it('a ping unanswered for quickSuspectAfterMs is reported slow, once, before the suspicion', async () => {
    vi.useFakeTimers();
    const alive = { value: true };
    const { WebSocket } = node(alive);
    const { c } = await connect(WebSocket);
    const seen: [string, number][] = [];
    const unanswered: boolean[] = [];
    c.on('slow', () => (seen.push(['slow', Date.now()]), unanswered.push(c.pingUnanswered)));
    c.on('suspect', () => seen.push(['suspect', Date.now()]));
    await vi.advanceTimersByTimeAsync(3000);
    expect(seen).toEqual([]);
    expect(c.pingUnanswered).toBe(false);
    alive.value = false;
    const frozenAt = Date.now();
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen.map(([e]) => e)).toEqual(['slow', 'suspect']);
    expect(unanswered).toEqual([true]);
    // A ping within 300 ms of silence, slow 150 ms after it.
    expect(seen[0]![1] - frozenAt).toBeLessThanOrEqual(500);
  });

  /** A connected client on fake timers, its node answering while `alive.value`; `slowAt`: when it said slow. */
  async function slowWatched() {
    vi.useFakeTimers();
    const alive = { value: true };
    const { WebSocket, pings } = node(alive);
    const { c } = await connect(WebSocket);
    const slowAt: number[] = [];
    c.on('slow', () => slowAt.push(Date.now()));
    return { alive, pings, c, slowAt };
  }

  it('probe() pings at once and says slow exactly quickSuspectAfterMs later, not at the next keep-alive look; an answered probe says nothing', async () => {
    const { alive, pings, c, slowAt } = await slowWatched();
    await vi.advanceTimersByTimeAsync(3000);
    // Answered: nothing said, and the probe is a ping like any other.
    let before = pings.length;
    c.probe();
    expect(pings.length).toBe(before + 1);
    await vi.advanceTimersByTimeAsync(500);
    expect(slowAt).toEqual([]);
    // Frozen just after the keep-alive heard it: without a probe, the ping would wait 200 ms of silence.
    await vi.advanceTimersByTimeAsync(30);
    alive.value = false;
    before = pings.length;
    const probedAt = Date.now();
    c.probe();
    expect(pings.length).toBe(before + 1);
    expect(pings.at(-1)).toBe(probedAt);
    // A second probe while that ping is out sends nothing more.
    c.probe();
    expect(pings.length).toBe(before + 1);
    await vi.advanceTimersByTimeAsync(400);
    expect(slowAt).toHaveLength(1);
    // 150 ms and the moment given to input already waiting; the keep-alive would have said it at its look 170 ms after.
    expect(slowAt[0]! - probedAt).toBeGreaterThanOrEqual(150);
    expect(slowAt[0]! - probedAt).toBeLessThan(160);
  });

  it("the endpoint's own answers (a receipt) while the node is silent do not answer for the node: the probe still says slow", async () => {
    vi.useFakeTimers();
    const alive = { value: true };
    // The public endpoint answers receipts itself, whether the node behind it is there or not.
    const { WebSocket, sockets } = fakeSocket((m, reply) => {
      if (m.type === 'viewer.receipt') reply({ v: 1, id: m.id, ok: true, data: { counted: true } });
      else if (m.type === 'session.ping' && alive.value) reply({ v: 1, id: m.id, ok: true, data: {} });
    });
    const { c } = await connect(WebSocket);
    const slowAt: number[] = [];
    c.on('slow', () => slowAt.push(Date.now()));
    await vi.advanceTimersByTimeAsync(3030);
    alive.value = false;
    const probedAt = Date.now();
    c.probe();
    await vi.advanceTimersByTimeAsync(50);
    await expect(c.request('viewer.receipt', { streamId: 's', nodeId: 'n', seq: 1, intervalMs: 1000, bytes: 1, packets: 1, lost: 0 })).resolves.toEqual({ counted: true });
    await vi.advanceTimersByTimeAsync(150);
    expect(slowAt).toHaveLength(1);
    expect(slowAt[0]! - probedAt).toBeLessThan(160);
    expect(c.pingUnanswered).toBe(true);
    // Any other word still counts: a notification from the node clears it.
    sockets[0]!.emit('message', { data: JSON.stringify({ v: 1, type: 'stream.state', data: { state: 'live' } }) });
    expect(c.pingUnanswered).toBe(false);
  });

  it("a probe whose ping a late keep-alive tick forgot (this thread starved) asks again at its verdict's time, and says slow 150 ms after that", async () => {
    const { alive, pings, c, slowAt } = await slowWatched();
    await vi.advanceTimersByTimeAsync(3030);
    alive.value = false;
    const probedAt = Date.now();
    c.probe();
    // The thread is starved for 250 ms: the next keep-alive tick comes late and forgets the ping out.
    vi.setSystemTime(Date.now() + 250);
    await vi.advanceTimersByTimeAsync(100);
    expect(c.pingUnanswered).toBe(false);
    const before = pings.length;
    await vi.advanceTimersByTimeAsync(300);
    // Asked again when the probe's verdict was due, slow 150 ms after that: not at the keep-alive's own ping and look.
    expect(pings.length).toBeGreaterThan(before);
    expect(slowAt).toHaveLength(1);
    expect(slowAt[0]! - probedAt).toBeLessThan(250 + 150 + 160);
  });

  it('a node that answers late, within deadAfterMs, is suspected but kept', async () => {
    vi.useFakeTimers();
    const held: Array<() => void> = [];
    const { WebSocket } = fakeSocket((m, reply) => {
      if (m.type === 'session.ping') held.push(() => reply({ v: 1, id: m.id, ok: true, data: {} }));
    });
    const { c, closed } = await connect(WebSocket);
    let suspicions = 0;
    c.on('suspect', () => suspicions++);
    // Each ping answered after 800 ms: past suspicion, short of death.
    const answering = setInterval(() => held.splice(0).forEach((f) => f()), 800);
    await vi.advanceTimersByTimeAsync(8000);
    clearInterval(answering);
    expect(suspicions).toBeGreaterThan(0);
    expect(closed).toEqual([]);
  });

  it('a node that stops answering is closed with CASCADE_ERR_CLIENT_TIMEOUT after deadAfterMs', async () => {
    vi.useFakeTimers();
    const alive = { value: true };
    const { WebSocket } = node(alive);
    const { c, closed } = await connect(WebSocket);
    await vi.advanceTimersByTimeAsync(3000);
    alive.value = false;
    const frozenAt = Date.now();
    await vi.advanceTimersByTimeAsync(1000);
    expect(closed).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(closed).toEqual([[4504, 'CASCADE_ERR_CLIENT_TIMEOUT']]);
    expect(c.closed).toBe(true);
    // ping interval + deadAfter at most, with the default settings.
    expect(Date.now() - frozenAt).toBeLessThanOrEqual(3000);
  });

  it('an error reply proves the node alive (an older node without session.ping)', async () => {
    vi.useFakeTimers();
    const { WebSocket } = node({ value: true }, (id) => ({ v: 1, id, ok: false, error: { code: 'CASCADE_ERR_PROTOCOL_UNKNOWN_TYPE', message: 'session.ping' } }));
    const { closed } = await connect(WebSocket);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(closed).toEqual([]);
  });

  it('a client whose own thread stalled does not judge the node on that late tick', async () => {
    vi.useFakeTimers();
    const held: Array<() => void> = [];
    const { WebSocket } = fakeSocket((m, reply) => {
      if (m.type === 'session.ping') held.push(() => reply({ v: 1, id: m.id, ok: true, data: {} }));
    });
    const { closed } = await connect(WebSocket);
    await vi.advanceTimersByTimeAsync(250);
    expect(held.length).toBe(1);
    // The thread blocks for 5 s right after the ping left: the node's answer arrives meanwhile
    // but sits unread behind the (late) keep-alive tick.
    vi.setSystemTime(Date.now() + 5000);
    await vi.advanceTimersByTimeAsync(500);
    expect(closed).toEqual([]);
    held.shift()!();
    await vi.advanceTimersByTimeAsync(0);
    // Back to normal: the node answers every ping.
    const answering = setInterval(() => held.splice(0).forEach((f) => f()), 100);
    await vi.advanceTimersByTimeAsync(5000);
    clearInterval(answering);
    expect(closed).toEqual([]);
  });

  it('keepAlive: false sends no pings', async () => {
    vi.useFakeTimers();
    const { WebSocket, pings } = node({ value: false });
    const { closed } = await connect(WebSocket, false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(pings).toEqual([]);
    expect(closed).toEqual([]);
  });

  it('judges by the clock it is given: a node silent by that clock is suspected and closed; while that clock stands still, nothing is judged', async () => {
    // Only the timers are faked: Date.now runs on, and the client must not read it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    const clock = { t: 1_000_000, now() { return this.t; } };
    const alive = { value: false };
    const { WebSocket } = node(alive);
    const c = await SignalClient.connect('http://h:1', { WebSocket, clock });
    const closed: Array<[number, string]> = [];
    c.on('close', (code, reason) => closed.push([code, reason]));
    let suspicions = 0;
    c.on('suspect', () => suspicions++);
    // Ten seconds of timer ticks while the given clock stands still: no ping is even due.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(suspicions).toBe(0);
    expect(closed).toEqual([]);
    // The clock moves with the ticks: the silent node is suspected, then closed.
    for (let i = 0; i < 30; i++) {
      clock.t += 100;
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(suspicions).toBe(1);
    expect(closed).toEqual([[4504, 'CASCADE_ERR_CLIENT_TIMEOUT']]);
  });
});
