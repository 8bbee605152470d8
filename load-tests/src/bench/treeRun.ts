import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { getJson, issueToken, startRedis, startRelay, startServer, TEST_SECRET, waitFor, type NodeProcess, type RedisServer } from '@cascade/testing';
import { ensureAvClip } from '../clip.js';
import { wallClockMs } from '../clock.js';
import type { ViewerResult } from '../LoadTestTypes.js';
import { ensureSink } from '../sink.js';
import { SyntheticBroadcaster } from '../SyntheticBroadcaster.js';
import { ViewerFleet, type FleetTotals } from '../ViewerFleet.js';
import { childPids, processCpuSeconds } from './capacity/procStat.js';
import { windowMedia, type MediaWindow } from './capacity/realWindow.js';

export interface TreeRunOptions {
  /** Sink viewers to join, all through the origin's URL. */
  viewers: number;
  /** Joins per second, all together. */
  joinRatePerSec: number;
  /** Relays started under the origin (each its own process with one worker). */
  relays: number;
  relayMaxViewers: number;
  originMaxViewers: number;
  /** K: child relays per node and stream. */
  maxChildren: number;
  /** Put the controller's store in a private Redis (as a deployment does) rather than in process. */
  redis: boolean;
  /** Stream bitrate (audio + video clip), kbit/s. */
  kbps: number;
  /** Steady-state window after every viewer joined (ms). */
  windowMs: number;
  sinkProcesses: number;
  /** Sink viewers negotiate transport-cc (as browsers do). Default true. */
  sinkTwcc?: boolean;
  log: (line: string) => void;
}

export interface NodeFigures {
  id: string;
  kind: string;
  depth: number | null;
  parent: string | null;
  viewers: number;
  children: number;
  /** CPU of the node's processes (Node + workers) over the window, share of one core. */
  cpu: number;
  /** Resident memory of its workers and of its Node process, bytes. */
  workerRss: number;
  nodeRss: number;
  /** Before any viewer: the worker's RSS (for the per-viewer slope). */
  workerRssIdle: number;
  /** Media sent, kbit/s (from its heartbeat figures). */
  bitrateOutKbps: number;
}

export interface TreeRunResult {
  joined: number;
  failed: number;
  failuresByCode: Record<string, number>;
  /** First join asked → last join settled (ms). */
  stormMs: number;
  joinMs: { p50: number | null; p95: number | null; max: number | null; count: number };
  /** Viewers that received media in the window / connected. */
  receiving: number;
  connected: number;
  loss: number;
  sinkDrops: number;
  ppsPerViewer: number;
  kbpsPerViewer: number;
  nodes: NodeFigures[];
  viewersByNode: Record<string, number>;
  sinkCpu: number;
  durationMs: number;
}

type Relay = NodeProcess & { nodeId: string };

/** The steady window after the storm: each node's CPU, the sinks' CPU, what the viewers received. */
interface SteadyWindow {
  /** Per node (origin first, then the relays), share of one core. */
  nodeCpu: number[];
  sinkCpu: number;
  media: MediaWindow;
  /** Join times (request → DTLS connected) at the window's end. */
  joinMs: FleetTotals['sink']['joinMs'];
}

/** Settings every node shares: one worker each, on loopback, no limit of consumers per router. */
const COMMON_ENV = {
  CASCADE_LOG_LEVEL: 'warn',
  CASCADE_MEDIASOUP_NUM_WORKERS: '1',
  CASCADE_MEDIASOUP_LISTEN_IPS: '[{"ip":"127.0.0.1"}]',
  CASCADE_MEDIASOUP_CONSUMERS_PER_ROUTER: '100000',
};

/** Resident set of a pid (bytes), 0 once gone. */
function rss(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;
  } catch {
    return 0;
  }
}

/**
 * A distribution tree on this machine, started like the README's: an origin (the controller
 * in it, its store in process or in a private Redis), relays registered with it, a broadcaster,
 * then sink viewers joining at a rate through the origin's URL (the controller places each).
 * Measures the joins, what every viewer receives, and each node's CPU, memory and egress.
 */
export async function runTree(o: TreeRunOptions): Promise<TreeRunResult> {
  const started = Date.now();
  let redis: RedisServer | undefined;
  let origin: NodeProcess | undefined;
  const relays: Relay[] = [];
  let caster: SyntheticBroadcaster | undefined;
  let fleet: ViewerFleet | undefined;
  try {
    const sinkBin = await ensureSink();
    const clip = await ensureAvClip(o.kbps);
    if (o.redis) redis = await startRedis();
    origin = await startOrigin(o, redis);
    for (let i = 0; i < o.relays; i++) relays.push(await startTreeRelay(o, origin.url, i));
    const procs = () => nodeProcs(origin!, relays);
    // Before any viewer: each node's worker memory, for the per-viewer slope.
    const idleRss = new Map(procs().map(({ p, pids }) => [p.url, workerRss(pids)]));
    caster = await startBroadcaster(o, origin.url, clip);
    const streamId = caster.streamId;
    await waitFor(async () => (await getJson<{ state: string }>(`${origin!.url}/api/streams/${streamId}`)).body.state === 'live', { what: 'the stream to be live' });
    fleet = viewerFleet(o, origin.url, streamId, sinkBin);
    const storm = await joinStorm(o, fleet);
    // Every consumer waits for a key frame; then the steady window.
    await sleep(2500);
    const w = await steadyWindow(o, procs, fleet);
    const nodes = await nodeFigures(origin.url, streamId, procs, relays, w, idleRss);
    const result = await fleet.stop();
    fleet = undefined;
    return treeResult(storm, w, nodes, result.viewers as ViewerResult[], started);
  } finally {
    await fleet?.stop().catch(() => undefined);
    await caster?.stop();
    for (const r of relays) await r.kill();
    await origin?.kill();
    await redis?.stop();
  }
}

/** The origin with the controller in it, its store in the private Redis when there is one. */
function startOrigin(o: TreeRunOptions, redis: RedisServer | undefined): Promise<NodeProcess> {
  return startServer({
    host: '127.0.0.1',
    env: {
      ...COMMON_ENV,
      CASCADE_HTTP_HOST: '127.0.0.1',
      CASCADE_WEB_DEMO_ENABLED: 'false',
      CASCADE_ORIGIN_MAX_VIEWERS: String(o.originMaxViewers),
      CASCADE_TOPOLOGY_MAX_CHILDREN: String(o.maxChildren),
      ...(redis ? { CASCADE_REDIS_URL: redis.url } : {}),
    },
  });
}

/** Relay number i, registered with the origin's controller. */
function startTreeRelay(o: TreeRunOptions, controllerUrl: string, i: number): Promise<Relay> {
  return startRelay({
    controllerUrl,
    token: issueToken({ scope: ['relay'], sub: `bench-relay-${i}` }, TEST_SECRET),
    maxViewers: o.relayMaxViewers,
    maxChildren: o.maxChildren,
    // A declared upload that carries every viewer it may take (1,700 kbit/s each by default policy).
    args: ['--up-kbps', String((o.relayMaxViewers + o.maxChildren + 1) * 2000)],
    env: COMMON_ENV,
  });
}

/** Each node's processes: its Node process, then the processes it started (its workers). */
function nodeProcs(origin: NodeProcess, relays: Relay[]): { p: NodeProcess; pids: number[] }[] {
  return [origin, ...relays].map((p) => ({ p, pids: [p.proc.pid!, ...childPids(p.proc.pid!)] }));
}

/** Resident memory of a node's workers (its pids but the first), bytes. */
function workerRss(pids: number[]): number {
  return pids.slice(1).reduce((a, pid) => a + rss(pid), 0);
}

/** The load test's synthetic broadcaster (ffmpeg replaying the clip, with audio), publishing to the origin. */
function startBroadcaster(o: TreeRunOptions, url: string, clip: string): Promise<SyntheticBroadcaster> {
  return SyntheticBroadcaster.start(
    { url, token: issueToken({ scope: ['broadcast'], sub: 'tree-bench' }, TEST_SECRET), clipPath: clip, audio: true, maxDurationSec: 900 },
    { now: wallClockMs, warn: (m) => o.log(`broadcaster: ${m}`) },
  );
}

/** The sink viewers, all joining through the origin's URL (the controller places each). */
function viewerFleet(o: TreeRunOptions, url: string, streamId: string, sinkBin: string): ViewerFleet {
  return new ViewerFleet({
    url,
    streamId,
    viewers: o.viewers,
    processes: o.sinkProcesses,
    rampPerSec: o.joinRatePerSec,
    durationMs: 600_000,
    stamped: false,
    freezeGapMs: 500,
    joinTimeoutMs: 30_000,
    maxInFlightPerProcess: 128,
    sink: { bin: sinkBin, config: { pingMs: 1000, twcc: o.sinkTwcc ?? true, pollMs: 20 } },
  });
}

/** Starts the viewers joining at the rate and waits until every join has settled (or a minute past what the rate needs). */
async function joinStorm(o: TreeRunOptions, fleet: ViewerFleet): Promise<{ stormMs: number; totals: FleetTotals }> {
  const t0 = Date.now();
  await fleet.start();
  let t: FleetTotals = fleet.totals();
  const deadline = Date.now() + (o.viewers / o.joinRatePerSec) * 1000 + 60_000;
  while (t.connected + t.failed + t.lostViewers < o.viewers && Date.now() < deadline) {
    await sleep(250);
    t = fleet.totals();
  }
  const stormMs = Date.now() - t0;
  o.log(`[tree] ${t.connected} of ${o.viewers} joined, ${t.failed} failed, in ${(stormMs / 1000).toFixed(1)} s`);
  return { stormMs, totals: t };
}

/** One window of `windowMs`: each node's CPU and the sinks' from /proc, the media from two fleet snapshots. */
async function steadyWindow(o: TreeRunOptions, procs: () => { pids: number[] }[], fleet: ViewerFleet): Promise<SteadyWindow> {
  const cpuOf = (pids: number[]) => pids.reduce((a, pid) => a + (processCpuSeconds(pid) ?? 0), 0);
  const before = procs().map(({ pids }) => cpuOf(pids));
  const sinkBefore = fleet.pids.reduce((a, pid) => a + (processCpuSeconds(pid) ?? 0), 0);
  const a = await fleet.snapshot();
  const w0 = performance.now();
  await sleep(o.windowMs);
  const b = await fleet.snapshot();
  const sec = (performance.now() - w0) / 1000;
  const after = procs().map(({ pids }) => cpuOf(pids));
  const sinkCpu = (fleet.pids.reduce((x, pid) => x + (processCpuSeconds(pid) ?? 0), 0) - sinkBefore) / sec;
  const media = windowMedia(a, b, sec);
  return { nodeCpu: after.map((x, i) => (x - before[i]!) / sec), sinkCpu, media, joinMs: b.sink.joinMs };
}

/** Each node as the controller sees it (depth, parent, viewers, egress) with its CPU over the window and its memory now. */
async function nodeFigures(
  url: string,
  streamId: string,
  procs: () => { p: NodeProcess; pids: number[] }[],
  relays: Relay[],
  w: SteadyWindow,
  idleRss: Map<string, number>,
): Promise<NodeFigures[]> {
  const topo = (await getJson<{ nodes: { id: string; parent: string | null; depth: number; viewers: number; children: number; bitrateOutKbps: number }[] }>(`${url}/api/streams/${streamId}/topology`)).body;
  const nodeList = (await getJson<{ nodes: { id: string; kind: string }[] }>(`${url}/api/nodes`)).body.nodes;
  return procs().map(({ p, pids }, i) => {
    // Relays have no address of their own to match (they open no signalling port): by id, which each relay told us.
    const entry = nodeList.find((n) => (i === 0 ? n.kind === 'origin' : n.id === relays[i - 1]!.nodeId));
    const tn = topo.nodes.find((n) => n.id === entry?.id);
    return {
      id: entry?.id ?? p.url,
      kind: i === 0 ? 'origin' : 'relay',
      depth: tn?.depth ?? null,
      parent: tn?.parent ?? null,
      viewers: tn?.viewers ?? 0,
      children: tn?.children ?? 0,
      cpu: w.nodeCpu[i]!,
      workerRss: workerRss(pids),
      nodeRss: rss(pids[0]!),
      workerRssIdle: idleRss.get(p.url) ?? 0,
      bitrateOutKbps: tn?.bitrateOutKbps ?? 0,
    };
  });
}

/** The run's result: the storm, the window, each node, and where the viewers went (and why some did not). */
function treeResult(storm: { stormMs: number; totals: FleetTotals }, w: SteadyWindow, nodes: NodeFigures[], viewers: ViewerResult[], started: number): TreeRunResult {
  const viewersByNode: Record<string, number> = {};
  const failuresByCode: Record<string, number> = {};
  for (const v of viewers) {
    if (v.nodeId) viewersByNode[v.nodeId] = (viewersByNode[v.nodeId] ?? 0) + 1;
    if (v.error) failuresByCode[v.error.code] = (failuresByCode[v.error.code] ?? 0) + 1;
  }
  const { media, joinMs: joinH } = w;
  return {
    joined: storm.totals.connected,
    failed: storm.totals.failed,
    failuresByCode,
    stormMs: storm.stormMs,
    joinMs: { p50: joinH.count ? joinH.percentile(50) : null, p95: joinH.count ? joinH.percentile(95) : null, max: joinH.count ? joinH.percentile(100) : null, count: joinH.count },
    receiving: media.viewers - media.silentViewers,
    connected: media.viewers,
    loss: media.loss,
    sinkDrops: media.sinkDrops,
    ppsPerViewer: media.ppsPerViewer,
    kbpsPerViewer: media.kbpsPerViewer,
    nodes,
    viewersByNode,
    sinkCpu: w.sinkCpu,
    durationMs: Date.now() - started,
  };
}
