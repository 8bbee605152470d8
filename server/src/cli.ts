#!/usr/bin/env node
/**
 * Operator commands. `cascade token relay --sub alice [--volunteer] [--ttl 30d]` prints a
 * relay token signed with the deployment secret (auth.secret / CASCADE_AUTH_SECRET);
 * `cascade ingest --url … --token …` asks an origin for plain RTP ports and prints (or runs)
 * the ffmpeg command that goes live through them.
 */
import { parseArgs } from 'node:util';
import { runIngest } from './ingest/ingestCommand.js';
import { loadConfig } from '@cascade/config';
import { TokenService } from '@cascade/controller';
import type { TokenScope } from '@cascade/protocol';

const USAGE = `usage:
  cascade token relay     --sub <name> [--volunteer] [--ttl <duration>]
  cascade token broadcast --sub <name> [--stream <id>] [--ttl <duration>]
  cascade token watch     --sub <name> [--stream <id>] [--ttl <duration>]
  cascade token admin     --sub <name> [--ttl <duration>]   (operator actions: delete any recording)
  cascade ingest --url <origin> --token <broadcast token> [--video vp8|h264|none] [--no-audio]
                 [--title <text>] [--record] [--input <file> [--loop]]
The secret comes from the config (CASCADE_AUTH_SECRET or --config file).
Durations: 3600, 90m, 12h, 30d (default 30d for relays, 12h otherwise).
ingest prints the ffmpeg command (and an SDP) that sends to the ports the origin hands out;
with --input it runs ffmpeg on that file itself and ends the stream when ffmpeg stops.`;

function seconds(d: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

/** A bad command line: one line saying what is wrong, the usage, exit status 2. */
function usageError(what: string): never {
  console.error(`cascade: ${what}\n\n${USAGE}`);
  process.exit(2);
}

function parseCommandLine() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        sub: { type: 'string' },
        stream: { type: 'string' },
        volunteer: { type: 'boolean', default: false },
        ttl: { type: 'string' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        url: { type: 'string' },
        token: { type: 'string' },
        video: { type: 'string' },
        'no-audio': { type: 'boolean', default: false },
        title: { type: 'string' },
        input: { type: 'string' },
        loop: { type: 'boolean', default: false },
        record: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    if (!String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_')) throw err;
    // "Unknown option '--bogus'. To specify a positional argument…": the first sentence says it.
    const what = (err as Error).message.split('. ')[0]!;
    return usageError(what.charAt(0).toLowerCase() + what.slice(1));
  }
}

const { values, positionals } = parseCommandLine();
const [command, scope] = positionals;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (command === 'ingest') {
  if (positionals.length > 1) usageError(`unexpected argument '${positionals[1]}'`);
  if (!values.url) usageError('--url <origin> is required');
  if (!values.token) usageError('--token <broadcast token> is required');
  const video = (values.video ?? 'vp8').toLowerCase();
  if (!['vp8', 'h264', 'none'].includes(video)) usageError(`--video is vp8, h264 or none, not '${values.video}'`);
  process.exit(
    await runIngest({
      url: values.url,
      token: values.token,
      video: video as 'vp8' | 'h264' | 'none',
      audio: !values['no-audio'],
      ...(values.title ? { title: values.title } : {}),
      ...(values.input ? { input: values.input } : {}),
      loop: values.loop ?? false,
      record: values.record ?? false,
    }),
  );
}
if (command !== 'token') usageError(command === undefined ? 'no command given' : `unknown command '${command}'`);
if (!['relay', 'broadcast', 'watch', 'admin'].includes(scope ?? '')) usageError(scope === undefined ? 'token for what? (relay, broadcast, watch or admin)' : `unknown token kind '${scope}'`);
if (positionals.length > 2) usageError(`unexpected argument '${positionals[2]}'`);
if (!values.sub) usageError('--sub <name> is required');
const ttlText = values.ttl ?? (scope === 'relay' ? '30d' : '12h');
if (!/^\d+[smhd]?$/.test(ttlText)) usageError(`bad duration '${ttlText}'`);
try {
  const config = loadConfig({ env: process.env, ...(values.config ? { file: values.config } : {}) });
  if (!config.auth.secret) throw new Error('no secret: set CASCADE_AUTH_SECRET (the same one the controller uses)');
  const tokens = new TokenService(config.auth.secret);
  const ttl = seconds(ttlText);
  const token = tokens.issue(
    {
      scope: [scope as TokenScope],
      sub: values.sub,
      ...(values.stream ? { stream: values.stream } : {}),
      ...(scope === 'relay' && values.volunteer ? { volunteer: true } : {}),
    },
    ttl,
  );
  process.stdout.write(token + '\n');
} catch (err) {
  console.error(`cascade token: ${(err as Error).message}`);
  process.exit(1);
}
