#!/usr/bin/env node
/**
 * `cascade-relay`: run a relay that helps carry streams. A volunteer runs
 *   cascade-relay --controller https://cascade.example.org --token <relay token>
 * and sees what it is doing; Ctrl-C moves its viewers away before it exits.
 */
import { createLogger, loadConfig, parseCommandLine } from '@cascade/config';
import { isCascadeError } from '@cascade/protocol';
import { defaultRelayId, startRelay } from './startRelay.js';

const USAGE = `cascade-relay: help carry live streams to viewers

  cascade-relay --controller <url> --token <relay token> [options]

  --controller <url>      the deployment's address, e.g. https://live.example.org
  --token <token>         relay token from the operator (cascade token relay --sub <you>)
  --id <name>             node id to register under (default: derived from the token)
  --media-port <n>        the UDP and TCP port viewers reach you on (default 40000); the
                          next 16 UDP ports carry pipes to other relays (--pipe-ports)
  --pipe-ports <n>        how many UDP ports after the media port pipes use (default 16)
  --no-port-mapping       do not ask your router to forward those ports (UPnP, NAT-PMP)
  --listen-ip <ip>        local address for media (default 0.0.0.0)
  --media-ip <ip>         public address for media (default: what the controller sees, or the router says)
  --port <n>              local status page (/healthz, /metrics) on 127.0.0.1 (default 8090; 0 = any)
  --http-host <ip>        address of the status page (default 127.0.0.1)
  --max-viewers <n>       viewers this relay may serve (default 100)
  --max-children <n>      relays this relay may feed (default 3)
  --up-kbps <n>           your upload bandwidth in kbit/s (default 50000); the controller
                          measures it too, and gives you at most one viewer or child relay
                          per 1700 kbit/s of the lower figure
  --down-kbps <n>         your download bandwidth in kbit/s (default 50000)
  --workers <n>           mediasoup workers, one media port each (default 1)
  --config <file>         YAML/JSON config file (every flag has a CASCADE_RELAY_* variable too)
  --quiet                 JSON logs only, no progress lines
  --verbose               JSON logs at info level (default: warnings only, progress lines say the rest)`;

const OPTIONS = {
  controller: { type: 'string' },
  token: { type: 'string' },
  id: { type: 'string' },
  port: { type: 'string' },
  'http-host': { type: 'string' },
  'media-port': { type: 'string' },
  'pipe-ports': { type: 'string' },
  'no-port-mapping': { type: 'boolean', default: false },
  'listen-ip': { type: 'string' },
  'media-ip': { type: 'string' },
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

const { values } = parseCommandLine({ name: 'cascade-relay', usage: USAGE }, { options: OPTIONS });
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const env = { ...process.env };
/** A relay's media: one port for viewers, a few after it for pipes (one port each), so a volunteer forwards a handful. */
const mediaPort = num(values['media-port'] ?? env.CASCADE_MEDIASOUP_MEDIA_PORT) ?? 40000;
const pipePorts = num(values['pipe-ports'] ?? env.CASCADE_RELAY_PIPE_PORTS) ?? 16;
const overrides: Record<string, unknown> = {
  roles: ['origin'],
  webDemo: { enabled: false },
  http: {
    ...(values.port !== undefined ? { port: num(values.port) } : {}),
    ...(values['http-host'] ? { host: values['http-host'] } : {}),
  },
  relay: {
    ...(values.controller ? { controllerUrl: values.controller } : {}),
    ...(values.token ? { token: values.token } : {}),
    ...(values['max-viewers'] !== undefined ? { maxViewers: num(values['max-viewers']) } : {}),
    ...(values['max-children'] !== undefined ? { maxChildren: num(values['max-children']) } : {}),
    ...(values['up-kbps'] !== undefined ? { upKbps: num(values['up-kbps']) } : {}),
    ...(values['down-kbps'] !== undefined ? { downKbps: num(values['down-kbps']) } : {}),
    ...(values['no-port-mapping'] ? { portMapping: false } : {}),
    pipePorts,
  },
  mediasoup: {
    ...(values['listen-ip'] || values['media-ip']
      ? { listenIps: [{ ip: values['listen-ip'] ?? '0.0.0.0', announcedIp: values['media-ip'] ?? '' }] }
      : {}),
    mediaPort,
    // Port 0 (any free port) leaves the whole range to pipes; a fixed port takes the ones after it.
    ...(mediaPort > 0 ? { rtcMinPort: mediaPort + 1, rtcMaxPort: mediaPort + pipePorts } : {}),
    ...(values.workers !== undefined ? { numWorkers: num(values.workers) } : env.CASCADE_MEDIASOUP_NUM_WORKERS === undefined ? { numWorkers: 1 } : {}),
  },
};
// The status page is the volunteer's own (the controller reaches the relay by its control connection only).
if (env.CASCADE_HTTP_PORT === undefined && values.port === undefined) (overrides.http as Record<string, unknown>).port = 8090;
if (env.CASCADE_HTTP_HOST === undefined && !values['http-host']) (overrides.http as Record<string, unknown>).host = '127.0.0.1';
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
  const running = await startRelay(config, { logger, nodeId, onPortMapping: (message) => say(message) });
  const { relay } = running;
  const ip = relay.node.pipeListenIp.announcedIp;
  const media = await relay.node.mediaPort();
  const ports = `UDP and TCP ${media}, UDP ${config.mediasoup.rtcMinPort}-${config.mediasoup.rtcMaxPort}`;
  relay.on('registered', (id) => say(`registered as ${id}; checking that ${ip} is reachable on ${ports}…`));
  relay.on('ready', () => say(`reachability checked: ready to relay (viewers reach you on ${ip} port ${media})`));
  relay.on('controllerlost', () => say('lost the controller; still serving current viewers, reconnecting…'));
  relay.on('streamstart', (s, p) => say(`carrying stream ${s} from ${p}`));
  relay.on('streamstop', (s) => say(`stopped carrying stream ${s}`));
  relay.on('parentlost', (s, why) => say(`parent of ${s} lost (${why}); asking for a new one`));
  relay.on('fatal', (err) => {
    say(`the controller refused this relay: ${err.code} ${err.message}`);
    if (err.code === 'CASCADE_ERR_RELAY_UNREACHABLE') {
      say(`viewers and other relays must reach ${ports} on ${ip}: forward these ports on your router to this machine, or pass --media-ip <your public ip>`);
    }
    void running.close().then(() => process.exit(2));
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
    await running.close();
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
