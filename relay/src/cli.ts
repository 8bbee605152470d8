#!/usr/bin/env node
/**
 * `cascade-relay`: run a relay that helps carry streams. A volunteer runs, in a clone of the repository,
 *   npm run relay -- --controller https://cascade.example.org --token <relay token>
 * and sees what it is doing; Ctrl-C moves its viewers away before it exits.
 */
import { parseArgs } from 'node:util';
import { createLogger, loadConfig } from '@cascade/config';
import { isCascadeError } from '@cascade/protocol';
import { defaultRelayId, startRelay } from './startRelay.js';

const USAGE = `cascade-relay: help carry live streams to viewers

  cascade-relay --controller <url> --token <relay token> [options]

  --controller <url>      controller (origin) base URL, e.g. https://live.example.org
  --token <token>         relay token from the operator (cascade token relay --sub <you>)
  --id <name>             node id to register under (default: derived from the token)
  --port <n>              signalling port viewers connect to (default 8090; 0 = any)
  --public-url <url>      URL viewers use to reach this relay (behind NAT/port forwarding)
  --listen-ip <ip>        local address for media (default 0.0.0.0)
  --media-ip <ip>         address announced for media (default: detected)
  --rtc-ports <min-max>   UDP/TCP ports for media (default 40000-49999)
  --max-viewers <n>       viewers this relay may serve (default 100)
  --max-children <n>      relays this relay may feed (default 3)
  --up-kbps <n>           your upload bandwidth in kbit/s (default 50000); the controller
                          gives you at most one viewer or child relay per 1700 kbit/s of it
  --down-kbps <n>         your download bandwidth in kbit/s (default 50000)
  --workers <n>           mediasoup workers (default: one per core)
  --config <file>         YAML/JSON config file (every flag has a CASCADE_RELAY_* variable too)
  --quiet                 JSON logs only, no progress lines
  --verbose               JSON logs at info level (default: warnings only, progress lines say the rest)`;

const OPTIONS = {
  controller: { type: 'string' },
  token: { type: 'string' },
  id: { type: 'string' },
  port: { type: 'string' },
  'public-url': { type: 'string' },
  'listen-ip': { type: 'string' },
  'media-ip': { type: 'string' },
  'rtc-ports': { type: 'string' },
  'max-viewers': { type: 'string' },
  'max-children': { type: 'string' },
  'up-kbps': { type: 'string' },
  'down-kbps': { type: 'string' },
  workers: { type: 'string' },
  config: { type: 'string', short: 'c' },
  quiet: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** A bad command line (unknown flag, missing value) is one line and the usage, not a stack trace. */
function parseCommandLine() {
  try {
    return parseArgs({ options: OPTIONS });
  } catch (err) {
    if (!String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_')) throw err;
    // "Unknown option '--bogus'. To specify a positional argument…": the first sentence says it.
    const what = (err as Error).message.split('. ')[0]!;
    console.error(`cascade-relay: ${what.charAt(0).toLowerCase()}${what.slice(1)}\n\n${USAGE}`);
    process.exit(2);
  }
}

const { values } = parseCommandLine();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const overrides: Record<string, unknown> = {
  roles: ['origin'],
  webDemo: { enabled: false },
  http: {
    ...(values.port !== undefined ? { port: num(values.port) } : {}),
    ...(values['public-url'] ? { publicUrl: values['public-url'] } : {}),
  },
  relay: {
    ...(values.controller ? { controllerUrl: values.controller } : {}),
    ...(values.token ? { token: values.token } : {}),
    ...(values['max-viewers'] !== undefined ? { maxViewers: num(values['max-viewers']) } : {}),
    ...(values['max-children'] !== undefined ? { maxChildren: num(values['max-children']) } : {}),
    ...(values['up-kbps'] !== undefined ? { upKbps: num(values['up-kbps']) } : {}),
    ...(values['down-kbps'] !== undefined ? { downKbps: num(values['down-kbps']) } : {}),
  },
  mediasoup: {
    ...(values['listen-ip'] || values['media-ip']
      ? { listenIps: [{ ip: values['listen-ip'] ?? '0.0.0.0', announcedIp: values['media-ip'] ?? '' }] }
      : {}),
    ...(values['rtc-ports'] ? { rtcMinPort: num(values['rtc-ports'].split('-')[0]), rtcMaxPort: num(values['rtc-ports'].split('-')[1]) } : {}),
    ...(values.workers !== undefined ? { numWorkers: num(values.workers) } : {}),
  },
};
const env = { ...process.env };
// A relay listens on 8090 unless told otherwise, so it can share a machine with an origin.
if (env.CASCADE_HTTP_PORT === undefined && values.port === undefined) (overrides.http as Record<string, unknown>).port = 8090;
// A volunteer reads the progress lines; the JSON log says only what needs attention.
if (env.CASCADE_LOG_LEVEL === undefined) overrides.log = { level: values.verbose ? 'info' : 'warn' };

let config;
try {
  config = loadConfig({ env, overrides, ...(values.config ? { file: values.config } : {}) });
} catch (err) {
  console.error(isCascadeError(err) ? `${err.code}: ${err.message}\n\n${USAGE}` : err);
  process.exit(78);
}

const nodeId = values.id || defaultRelayId(config.relay.token);
const logger = createLogger({ level: config.log.level, base: { node: nodeId, role: 'relay' } });
const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
const say = (line: string) => {
  if (!values.quiet) process.stderr.write(`[cascade-relay] ${line}\n`);
};
process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));

try {
  say(`starting: controller ${config.relay.controllerUrl}, up to ${plural(config.relay.maxViewers, 'viewer')} and ${plural(config.relay.maxChildren, 'child relay')}`);
  const relay = await startRelay(config, { logger, nodeId });
  relay.on('registered', (id) => say(`registered as ${id}; checking that ${relay.node.pipeListenIp.announcedIp} is reachable for media…`));
  relay.on('ready', () => say(`reachability checked: ready to relay (viewers connect to ${relay.url})`));
  relay.on('controllerlost', () => say('lost the controller; still serving current viewers, reconnecting…'));
  relay.on('streamstart', (s, p) => say(`carrying stream ${s} from ${p}`));
  relay.on('streamstop', (s) => say(`stopped carrying stream ${s}`));
  relay.on('parentlost', (s, why) => say(`parent of ${s} lost (${why}); asking for a new one`));
  relay.on('fatal', (err) => {
    say(`the controller refused this relay: ${err.code} ${err.message}`);
    if (err.code === 'CASCADE_ERR_RELAY_UNREACHABLE') {
      say(`viewers and other relays must reach UDP ports ${config.mediasoup.rtcMinPort}-${config.mediasoup.rtcMaxPort} on ${relay.node.pipeListenIp.announcedIp}: forward them, or pass --media-ip <public ip>`);
    }
    void relay.close().then(() => process.exit(2));
  });
  await relay.start().catch(() => undefined);

  let lastBytes = 0;
  const progress = setInterval(() => {
    const streams = relay.node.streams;
    const viewers = streams.reduce((n, s) => n + s.viewerCount, 0);
    const children = streams.reduce((n, s) => n + s.childCount, 0);
    const t = relay.meter.latest;
    if (t.bytesOut !== lastBytes || viewers > 0) {
      say(`${plural(streams.length, 'stream')}, ${plural(viewers, 'viewer')}, ${plural(children, 'child relay')}, ${(t.bitrateOutKbps / 1000).toFixed(1)} Mbit/s out, ${(t.bytesOut / 1e6).toFixed(1)} MB relayed`);
    }
    lastBytes = t.bytesOut;
  }, 5000);
  progress.unref();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      say('second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    say(`${signal}: moving viewers and child relays away before leaving (Ctrl-C again to force)…`);
    await relay.drain();
    await relay.close();
    say(`bye: relayed ${(relay.meter.latest.bytesOut / 1e6).toFixed(1)} MB in total`);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
} catch (err) {
  logger.fatal({ err }, 'relay cannot start');
  say(`cannot start: ${(err as Error).message}`);
  process.exit(1);
}
