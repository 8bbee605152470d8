import { parseArgs } from 'node:util';

export type BroadcasterKind = 'ffmpeg' | 'chromium';
/** werift: full JavaScript WebRTC stack; sink: the Go load sink (load-tests/sink), far cheaper per viewer. */
export type ClientKind = 'werift' | 'sink';

export interface LoadTestOptions {
  /** Base URL of the Cascade node to test (the origin). The only host viewers are pointed at. */
  url: string;
  /** Simulated (non-decoding) viewers. */
  viewers: number;
  /** What the simulated viewers are. Default werift. */
  client: ClientKind;
  /** taskset core list for sink processes (`--client sink`), e.g. "1". Default: not pinned. */
  sinkCores?: string;
  /** Sink viewers negotiate transport-wide congestion control (as browsers do). Default true. */
  sinkTwcc: boolean;
  /** Seconds from the first join to the end of the test; the ramp is included. */
  durationSec: number;
  /** Joins per second, all processes together. */
  rampPerSec: number;
  /** Stream to watch; with `broadcast` the id the broadcaster asks for. */
  streamId?: string;
  /** Start our own broadcaster (whose frames carry send-time stamps). */
  broadcast: boolean;
  broadcaster: BroadcasterKind;
  /** ffmpeg broadcaster: send an audio+video clip of this total bitrate (kbit/s) instead of the VP8-only clip. */
  bitrateKbps?: number;
  /** Broadcast token; without it a development server's /api/dev/token is used. */
  token?: string;
  /** Headless Chromium viewers that decode. */
  decoders: number;
  /** Of the simulated viewers, this many behind a bandwidth cap of capKbit (a network namespace; needs root). */
  capped: number;
  /** Decoding viewers behind the cap (in addition to `decoders`). */
  cappedDecoders: number;
  /** The cap, kbit/s each way. Default 500. */
  capKbit: number;
  /** Chromium broadcaster's camera: Chromium's fake one, or testsrc (as costly to encode as a real one). Default fake. */
  camera: 'fake' | 'testsrc';
  /** Report folder. Default ./load-test-reports/<timestamp>. */
  outDir?: string;
  /** Child processes for the simulated viewers. Default: one per ~200 viewers. */
  processes: number;
  /** Frame gap counted as a freeze, ms. */
  freezeGapMs: number;
  /** Time a viewer's watch() may take before it counts as failed, ms. */
  joinTimeoutMs: number;
  /** Print the one-line-per-second progress. */
  progress: boolean;
}

/** Limits that keep a typo from starting a test the machine cannot stop. */
export const LIMITS = {
  viewers: 10_000,
  durationSec: 3600,
  rampPerSec: 1000,
  decoders: 20,
  /** Viewers behind a cap, werift and decoding together: a namespace (and a process or a browser) each. */
  capped: 32,
  processes: 64,
  /**
   * Default werift viewers per process. Measured here: ~0.7–0.8 % of a core per viewer at
   * ~475 kbit/s (SRTP decryption and RTP parsing inside werift), so 100 viewers keep a
   * process near 70 % of a core, with room for bursts; 200 saturate it.
   */
  viewersPerProcess: 100,
  /**
   * Default sink viewers per process: one sink process reads all its viewers' sockets on one
   * core (~0.04 % of a core per viewer at ~475 kbit/s measured here), so 500 leave headroom.
   */
  sinkViewersPerProcess: 500,
} as const;

export const USAGE = `Usage: node load-tests/dist/cli.js --url http://host:8080 (--stream ID | --broadcast) [options]

  --url URL          Cascade node to test (viewers join there; the SDK follows redirects)
  --viewers N        simulated receive-only viewers (no decoding). Default 10
  --client K         werift (default: full JavaScript WebRTC, ~0.75 % of a core per viewer) or
                     sink (the Go load sink: real ICE/DTLS-SRTP/RTCP, hundreds per process)
  --sink-cores LIST  pin the sink processes with taskset (e.g. 1). Default: not pinned
  --sink-twcc on|off sink viewers negotiate transport-cc, as browsers do (default on); off: as a
                     viewer does when the server does not offer it (no per-viewer bandwidth estimation)
  --duration S       seconds from the first join to the end, ramp included. Default 60
  --ramp R[/s]       joins per second, all processes together. Default 20/s
  --stream ID        watch this existing stream
  --broadcast        start a synthetic broadcaster (VP8 clip, frames stamped for delay)
  --broadcaster K    ffmpeg (default: ffmpeg clip through werift) or chromium (fake camera)
  --bitrate KBPS     ffmpeg broadcaster: an Opus+VP8 clip of this total bitrate (e.g. 500, 1500, 3000)
                     instead of the VP8-only clip (~475 kbit/s)
  --token JWT        broadcast token (production servers); default: the dev server's /api/dev/token
  --decoders N       headless Chromium viewers that decode. Default 2
  --capped N         of the simulated viewers, N behind a bandwidth cap each (a network namespace and a
                     process each, on a rate-limited link; needs root, and a deployment listening on
                     all addresses). At most ${LIMITS.capped} capped viewers and decoders together
  --capped-decoders N  decoding Chromium viewers behind the cap, besides --decoders. Default 0
  --cap-kbit K       the cap, kbit/s each way. Default 500
  --camera C         Chromium broadcaster's camera: fake (default) or testsrc (costly to encode, like
                     a real camera: simulcast layers reach their bitrates)
  --out DIR          report folder. Default ./load-test-reports/<timestamp>
  --processes N      child processes for the simulated viewers. Default ceil(viewers/${LIMITS.viewersPerProcess})
                     (sink: ceil(viewers/${LIMITS.sinkViewersPerProcess}))
  --freeze-gap MS    frame gap counted as a freeze. Default 500
  --join-timeout MS  watch() time before a join counts as failed. Default 15000
  --no-progress      no per-second progress line
  -h, --help         this text
`;

export class UsageError extends TypeError {
  readonly code = 'CASCADE_ERR_LOADTEST_USAGE';
}

function int(name: string, raw: string | undefined, dflt: number, min: number, max: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in ${min}..${max} (got ${raw})`);
  return n;
}

/** `20/s`, `20`, `1200/min` → joins per second. */
export function parseRate(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/(s|sec|min|m))?$/.exec(raw.trim());
  if (!m) throw new UsageError(`--ramp must look like 20/s (got ${raw})`);
  const n = Number(m[1]) / (m[2] === 'min' || m[2] === 'm' ? 60 : 1);
  if (!(n > 0) || n > LIMITS.rampPerSec) throw new UsageError(`--ramp must be in (0, ${LIMITS.rampPerSec}]/s (got ${raw})`);
  return n;
}

/** Parse the CLI arguments; throws UsageError with a message fit for the terminal. Returns null for --help. */
export function parseCliArgs(argv: string[]): LoadTestOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        viewers: { type: 'string' },
        client: { type: 'string' },
        'sink-cores': { type: 'string' },
        'sink-twcc': { type: 'string' },
        duration: { type: 'string' },
        ramp: { type: 'string' },
        stream: { type: 'string' },
        broadcast: { type: 'boolean' },
        broadcaster: { type: 'string' },
        bitrate: { type: 'string' },
        token: { type: 'string' },
        decoders: { type: 'string' },
        capped: { type: 'string' },
        'capped-decoders': { type: 'string' },
        'cap-kbit': { type: 'string' },
        camera: { type: 'string' },
        out: { type: 'string' },
        processes: { type: 'string' },
        'freeze-gap': { type: 'string' },
        'join-timeout': { type: 'string' },
        'no-progress': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return null;
  if (!values.url) throw new UsageError('--url is required');
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new UsageError(`--url is not a URL: ${values.url}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be http(s)://');
  const broadcast = values.broadcast ?? false;
  if (!broadcast && !values.stream) throw new UsageError('give --stream ID or --broadcast');
  if (values.stream !== undefined && !/^[A-Za-z0-9_-]{3,64}$/.test(values.stream)) {
    throw new UsageError('--stream: ids are 3-64 of A-Z a-z 0-9 _ -');
  }
  const broadcaster = (values.broadcaster ?? 'ffmpeg') as BroadcasterKind;
  if (broadcaster !== 'ffmpeg' && broadcaster !== 'chromium') throw new UsageError('--broadcaster is ffmpeg or chromium');
  const client = (values.client ?? 'werift') as ClientKind;
  if (client !== 'werift' && client !== 'sink') throw new UsageError('--client is werift or sink');
  if (values['sink-cores'] !== undefined && (client !== 'sink' || !/^\d+([-,]\d+)*$/.test(values['sink-cores']))) {
    throw new UsageError('--sink-cores takes a core list like 1 or 0-1, with --client sink');
  }
  const sinkTwcc = values['sink-twcc'] ?? 'on';
  if ((sinkTwcc !== 'on' && sinkTwcc !== 'off') || (values['sink-twcc'] !== undefined && client !== 'sink')) {
    throw new UsageError('--sink-twcc is on or off, with --client sink');
  }
  const viewers = int('viewers', values.viewers, 10, 0, LIMITS.viewers);
  const capped = int('capped', values.capped, 0, 0, Math.min(viewers, LIMITS.capped));
  if (capped > 0 && client !== 'werift') throw new UsageError('--capped works with werift viewers');
  const camera = (values.camera ?? 'fake') as 'fake' | 'testsrc';
  if (camera !== 'fake' && camera !== 'testsrc') throw new UsageError('--camera is fake or testsrc');
  const perProcess = client === 'sink' ? LIMITS.sinkViewersPerProcess : LIMITS.viewersPerProcess;
  const dfltProcesses = Math.max(1, Math.ceil(viewers / perProcess));
  const processes = Math.min(int('processes', values.processes, dfltProcesses, 1, LIMITS.processes), Math.max(1, viewers));
  return {
    url: url.toString().replace(/\/$/, ''),
    viewers,
    client,
    ...(values['sink-cores'] !== undefined ? { sinkCores: values['sink-cores'] } : {}),
    sinkTwcc: sinkTwcc === 'on',
    durationSec: int('duration', values.duration, 60, 1, LIMITS.durationSec),
    rampPerSec: values.ramp === undefined ? 20 : parseRate(values.ramp),
    ...(values.stream !== undefined ? { streamId: values.stream } : {}),
    broadcast,
    broadcaster,
    ...(values.bitrate !== undefined ? { bitrateKbps: int('bitrate', values.bitrate, 0, 100, 20_000) } : {}),
    ...(values.token !== undefined ? { token: values.token } : {}),
    decoders: int('decoders', values.decoders, 2, 0, LIMITS.decoders),
    capped,
    cappedDecoders: int('capped-decoders', values['capped-decoders'], 0, 0, Math.min(LIMITS.decoders, LIMITS.capped - capped)),
    capKbit: int('cap-kbit', values['cap-kbit'], 500, 50, 1_000_000),
    camera,
    ...(values.out !== undefined ? { outDir: values.out } : {}),
    processes,
    freezeGapMs: int('freeze-gap', values['freeze-gap'], 500, 50, 60_000),
    joinTimeoutMs: int('join-timeout', values['join-timeout'], 15_000, 1000, 120_000),
    progress: !values['no-progress'],
  };
}
