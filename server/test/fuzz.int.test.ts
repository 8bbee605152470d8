import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '@cascade/controller';
import WebSocket from 'ws';
import { ControlRequests, NodeRequests, PROTOCOL_VERSION } from '@cascade/protocol';
import {
  demoState,
  fakeDtlsParameters,
  fakeSrtpParameters,
  getJson,
  issueToken,
  metric,
  startChromiumBroadcaster,
  startNodeViewer,
  startServer,
  vp8RtpParameters,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type TestBroadcaster,
} from '@cascade/testing';

/**
 * Random, malformed, oversized and out-of-order messages on /ws and /control of a running
 * origin, from several addresses at once, for a bounded time and count, while a Chromium
 * broadcaster and a viewer watch the same stream. Every message gets a coded answer or a coded
 * close, none an internal error; the bystanders never notice; nothing the fuzzers made is left
 * once they are gone. The seed is printed so that a failing run can be replayed
 * (CASCADE_TEST_FUZZ_SEED).
 */
const FUZZ_MS = 15_000;
const MAX_MESSAGES = 20_000;
const WS_CLIENTS = 6;
const CONTROL_CLIENTS = 3;
const SEED = Number(process.env.CASCADE_TEST_FUZZ_SEED) || randomBytes(4).readUInt32LE(0);

let origin: NodeProcess;
let broadcaster: TestBroadcaster;
let viewer: NodeViewer;

/** The placement simulation's seeded generator, with the helpers that pick messages. */
function prng(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

function randomString(r: Rng): string {
  switch (r.int(6)) {
    case 0:
      return '';
    case 1:
      return 'x'.repeat(r.int(5000));
    case 2:
      return String.fromCharCode(...Array.from({ length: r.int(40) }, () => r.int(0xffff)));
    case 3:
      return r.pick(['../../etc/passwd', '<script>alert(1)</script>', '%E0%A4%A', '\u0000', 'null', '__proto__', 'constructor', '9'.repeat(400)]);
    case 4:
      return randomBytes(r.int(64)).toString('base64url');
    default:
      return r.pick(['abc', 'origin', 'stream', 'recv', 'send', 'video', 'audio', 'client']);
  }
}

function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 3 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1, 2 ** 53, -(2 ** 31), 1e308, 0.5, 65536, 4294967296]);
    case 3:
    case 4:
      return randomString(r);
    case 5:
      return Array.from({ length: r.int(6) }, () => randomValue(r, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: r.int(6) }, () => [r.chance(0.2) ? '__proto__' : randomString(r).slice(0, 20), randomValue(r, depth + 1)]));
  }
}

/** Replace, drop or add fields of a valid-looking object, recursively. */
function mutate(r: Rng, v: unknown, depth = 0): unknown {
  if (r.chance(0.15)) return randomValue(r, depth);
  if (Array.isArray(v)) return v.map((x) => mutate(r, x, depth + 1));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (!r.chance(0.1)) out[k] = r.chance(0.3) ? mutate(r, x, depth + 1) : x;
    if (r.chance(0.1)) out[randomString(r).slice(0, 12)] = randomValue(r, depth + 1);
    return out;
  }
  return v;
}

function deepNesting(n: number): string {
  return `{"v":1,"id":1,"type":"stream.watch","data":{"streamId":${'['.repeat(n)}${']'.repeat(n)}}}`;
}

/** What a fuzzing client learned from earlier answers, to get further into a session. */
interface Memory {
  transports: string[];
  consumers: string[];
}

/** Valid-looking params for each request type, given the bystander's stream and what was learned. */
function template(type: string, r: Rng, streamId: string, mem: Memory): unknown {
  const transportId = mem.transports.length ? r.pick(mem.transports) : randomString(r);
  switch (type) {
    case 'stream.publish':
      return { token: issueToken({ scope: ['broadcast'], sub: `fuzz${r.int(3)}` }), ...(r.chance(0.3) ? { streamId } : {}), title: randomString(r).slice(0, 50) };
    case 'stream.watch':
      return { streamId: r.chance(0.8) ? streamId : randomString(r), ...(r.chance(0.2) ? { exclude: [randomString(r)] } : {}) };
    case 'transport.create':
      return { direction: r.pick(['send', 'recv']) };
    case 'transport.connect':
      return { transportId, dtlsParameters: fakeDtlsParameters() };
    case 'transport.restartIce':
      return { transportId };
    case 'producer.create':
      return { transportId, kind: r.pick(['video', 'audio']), rtpParameters: vp8RtpParameters(r.int(2 ** 31)) };
    case 'stream.subscribe':
      return { transportId, rtpCapabilities: { codecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000, preferredPayloadType: 96 }] } };
    case 'consumer.resume':
    case 'consumer.requestKeyFrame':
      return { consumerId: mem.consumers.length ? r.pick(mem.consumers) : randomString(r) };
    case 'pipe.open':
      return { ticket: randomBytes(40).toString('base64url'), streamId, ip: '127.0.0.1', port: 1 + r.int(65535), srtpParameters: fakeSrtpParameters() };
    case 'node.register':
      return {
        // Mostly tokens that do not verify; some that do (a relay that then never answers its probe).
        token: r.chance(0.3) ? issueToken({ scope: ['relay'], sub: `fuzzrelay${r.int(3)}`, volunteer: r.chance(0.5) }) : randomString(r),
        node: { url: 'http://127.0.0.1:9', mediaIp: '127.0.0.1', probePort: 9, capacity: { maxViewers: r.int(100), maxChildren: r.int(4), upKbps: r.int(1e5), downKbps: r.int(1e5) } },
        streams: [],
      };
    case 'node.probeAck':
      return { nonce: randomString(r).slice(0, 100) };
    case 'node.heartbeat':
      return { stats: { cpu: r.next(), viewers: r.int(10) }, streams: [] };
    case 'viewer.place':
      return { streamId };
    case 'viewer.left':
      return { streamId, count: 1 + r.int(100) };
    case 'stream.parentLost':
      return { streamId, parentNodeId: randomString(r).slice(0, 20) || 'x' };
    case 'stream.released':
      return { streamId };
    default:
      return {};
  }
}

interface Tally {
  sent: number;
  replies: number;
  closes: Map<number, number>;
  codes: Map<string, number>;
  internal: string[];
  unparsable: number;
}

/** One fuzzing client: keeps a connection open (reconnecting when closed) and sends until `stop()`. */
async function fuzzer(path: '/ws' | '/control', localAddress: string, r: Rng, streamId: string, tally: Tally, until: () => boolean): Promise<void> {
  const types = Object.keys(path === '/ws' ? NodeRequests : ControlRequests);
  while (!until()) {
    const mem: Memory = { transports: [], consumers: [] };
    let ws: WebSocket;
    try {
      ws = await new Promise<WebSocket>((resolve, reject) => {
        const s = new WebSocket(`${origin.url.replace('http', 'ws')}${path}?v=${r.chance(0.95) ? PROTOCOL_VERSION : r.int(100)}`, { localAddress });
        s.once('open', () => resolve(s));
        s.once('error', reject);
        s.once('unexpected-response', (_req, res) => {
          tally.codes.set(`http ${res.statusCode}`, (tally.codes.get(`http ${res.statusCode}`) ?? 0) + 1);
          res.resume();
          reject(new Error(`HTTP ${res.statusCode}`));
        });
      });
    } catch {
      await new Promise((res) => setTimeout(res, 50));
      continue;
    }
    const closed = new Promise<void>((resolve) =>
      ws.once('close', (code) => {
        tally.closes.set(code, (tally.closes.get(code) ?? 0) + 1);
        resolve();
      }),
    );
    ws.on('error', () => {});
    ws.on('message', (d) => {
      tally.replies++;
      let m: { ok?: boolean; data?: { id?: string; consumers?: { id: string }[] }; error?: { code?: string } };
      try {
        m = JSON.parse(d.toString());
      } catch {
        tally.unparsable++;
        return;
      }
      const code = m.error?.code;
      if (code) {
        tally.codes.set(code, (tally.codes.get(code) ?? 0) + 1);
        if (code === 'CASCADE_ERR_INTERNAL') tally.internal.push(d.toString().slice(0, 300));
      }
      if (m.ok && typeof m.data?.id === 'string') mem.transports.push(m.data.id);
      for (const c of m.data?.consumers ?? []) mem.consumers.push(c.id);
    });
    let id = 1;
    let open = true;
    void closed.then(() => (open = false));
    // One connection lives for a random number of messages, then goes (abruptly or not).
    const life = 1 + r.int(300);
    for (let i = 0; i < life && open && !until(); i++) {
      const kind = r.next();
      let frame: string | Buffer;
      const type = r.chance(0.9) ? r.pick(types) : randomString(r).slice(0, 30);
      if (kind < 0.45) frame = JSON.stringify({ v: 1, id: id++, type, data: r.chance(0.6) ? template(type, r, streamId, mem) : mutate(r, template(type, r, streamId, mem)) });
      else if (kind < 0.55) frame = JSON.stringify({ v: 1, id: id++, type, data: randomValue(r) });
      else if (kind < 0.65) frame = JSON.stringify(mutate(r, { v: 1, id: id++, type, data: template(type, r, streamId, mem) }));
      else if (kind < 0.72) frame = JSON.stringify({ v: 1, id: id++, type, data: template(type, r, streamId, mem) }).slice(0, r.int(80));
      else if (kind < 0.77) frame = randomBytes(r.int(2000));
      else if (kind < 0.82) frame = randomString(r);
      else if (kind < 0.86) frame = deepNesting(1 + r.int(3000));
      else if (kind < 0.88) frame = JSON.stringify({ v: 1, id: id++, type, data: { pad: 'x'.repeat(60_000 + r.int(200_000)) } });
      else if (kind < 0.93) frame = JSON.stringify(r.pick([{ v: 1, type, data: {} }, { v: 1, id: id++, ok: true, data: {} }, { v: 2, id: id++, type, data: {} }, { id: {}, type, data: [] }, [1, 2, 3], 'str', 42]));
      else if (kind < 0.95) {
        // A flood: the rate limit closes the connection with 4429.
        for (let k = 0; k < 150 && ws.readyState === WebSocket.OPEN; k++) ws.send(JSON.stringify({ v: 1, id: id++, type: 'session.ping', data: {} }));
        tally.sent += 150;
        continue;
      } else if (kind < 0.96) {
        ws.terminate();
        break;
      } else {
        await new Promise((res) => setTimeout(res, r.int(300)));
        continue;
      }
      if (ws.readyState !== WebSocket.OPEN) break;
      ws.send(frame);
      tally.sent++;
      // ~ 40 messages a second per client on average: within the rate limit, so that most
      // messages are answered rather than the connection cut.
      if (r.chance(0.5)) await new Promise((res) => setTimeout(res, r.int(50)));
    }
    if (ws.readyState === WebSocket.OPEN) ws.close();
    await Promise.race([closed, new Promise((res) => setTimeout(res, 2000))]);
    ws.terminate();
  }
}

const transports = () => metric(origin.url, 'cascade_media_transports');
const producers = () => metric(origin.url, 'cascade_media_producers');
const consumers = () => metric(origin.url, 'cascade_media_consumers');

beforeAll(async () => {
  origin = await startServer({
    env: {
      CASCADE_ORIGIN_RECONNECT_GRACE_MS: '1000',
      // The fuzzers come from 127.0.0.2-5 and meet every limit; the bystanders from 127.0.0.1.
      CASCADE_HTTP_UNLIMITED_ADDRESSES: '["127.0.0.1"]',
      CASCADE_LOG_LEVEL: 'info',
    },
  });
  broadcaster = await startChromiumBroadcaster(origin.url);
  viewer = await startNodeViewer(origin.url, broadcaster.streamId);
  await waitFor(() => viewer.counters.keyframes > 0, { what: 'the viewer to decode-ready frames' });
}, 120_000);

afterAll(async () => {
  viewer?.stop();
  await broadcaster?.stop();
  await origin?.stop();
});

describe(`fuzzing /ws and /control for up to ${FUZZ_MS / 1000} s or ${MAX_MESSAGES} messages (seed ${SEED})`, () => {
  const tally: Tally = { sent: 0, replies: 0, closes: new Map(), codes: new Map(), internal: [], unparsable: 0 };
  let baseline: { transports: number; producers: number; consumers: number };

  it('everything gets a coded answer and the bystanders keep being served', async () => {
    baseline = { transports: await transports(), producers: await producers(), consumers: await consumers() };
    const framesBefore = viewer.counters.frames;
    const started = Date.now();
    const until = () => Date.now() - started > FUZZ_MS || tally.sent >= MAX_MESSAGES;
    const rngs = Array.from({ length: WS_CLIENTS + CONTROL_CLIENTS }, (_, i) => prng(SEED + i));
    await Promise.all([
      ...Array.from({ length: WS_CLIENTS }, (_, i) => fuzzer('/ws', `127.0.0.${2 + (i % 4)}`, rngs[i]!, broadcaster.streamId, tally, until)),
      ...Array.from({ length: CONTROL_CLIENTS }, (_, i) => fuzzer('/control', `127.0.0.${2 + (i % 4)}`, rngs[WS_CLIENTS + i]!, broadcaster.streamId, tally, until)),
    ]);
    console.info(
      `[fuzz] seed ${SEED}: ${tally.sent} messages in ${((Date.now() - started) / 1000).toFixed(1)} s, ${tally.replies} answers; ` +
        `closes ${JSON.stringify(Object.fromEntries(tally.closes))}; codes ${JSON.stringify(Object.fromEntries(tally.codes))}`,
    );
    expect(tally.sent).toBeGreaterThan(1000);
    expect(tally.internal).toEqual([]);
    expect(tally.unparsable).toBe(0);
    // The server is up, and its log has no failure of its own.
    expect(origin.proc.exitCode).toBeNull();
    expect((await getJson(`${origin.url}/healthz`)).status).toBe(200);
    const logs = origin.logs.join('\n');
    expect(logs).not.toContain('"level":50');
    expect(logs).not.toContain('"level":60');
    // The viewer received frames all along and never had to reconnect; the broadcaster is still live.
    expect(viewer.counters.frames).toBeGreaterThan(framesBefore);
    expect(viewer.counters.reconnects).toBe(0);
    expect(viewer.counters.ended).toBe(false);
    expect((await demoState(broadcaster.page)).state).toBe('live');
  });

  it('once the fuzzers are gone nothing they made is left: transports, producers, consumers, streams, viewers, relays', async () => {
    await waitFor(async () => (await transports()) === baseline.transports, { what: 'transports back to the bystanders', timeoutMs: 30_000 });
    await waitFor(async () => (await producers()) === baseline.producers, { what: 'producers back to the bystanders', timeoutMs: 30_000 });
    await waitFor(async () => (await consumers()) === baseline.consumers, { what: 'consumers back to the bystanders', timeoutMs: 30_000 });
    await waitFor(async () => (await metric(origin.url, 'cascade_node_streams')) === 1, { what: 'only the bystander stream', timeoutMs: 30_000 });
    await waitFor(
      async () => {
        const { body } = await getJson<{ streams: { id: string; viewers: number }[] }>(`${origin.url}/api/streams`);
        return body.streams.length === 1 && body.streams[0]!.id === broadcaster.streamId && body.streams[0]!.viewers === 1;
      },
      { what: 'the bystander stream alone, with its one viewer', timeoutMs: 30_000 },
    );
    await waitFor(async () => (await getJson<{ nodes: unknown[] }>(`${origin.url}/api/nodes`)).body.nodes.length === 1, {
      what: 'no relay left registered',
      timeoutMs: 30_000,
    });
    const frames = viewer.counters.frames;
    await waitFor(() => viewer.counters.frames > frames + 10, { what: 'the viewer still receiving frames' });
  });
});
