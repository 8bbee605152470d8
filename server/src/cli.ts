#!/usr/bin/env node
/**
 * Operator commands. `cascade token relay --sub alice [--volunteer] [--ttl 1d]` prints a relay
 * token signed with the deployment secret (auth.secret / CASCADE_AUTH_SECRET); its id goes to
 * stderr. `cascade token revoke <id>` revokes a token everywhere: in Redis directly when
 * redis.url is set (every controller instance refuses it at once), otherwise through the running
 * server's operator API. `cascade ingest --url … --token …` asks an origin for plain RTP ports and
 * prints (or runs) the ffmpeg command that goes live through them.
 */
import { runIngest } from './ingest/ingestCommand.js';
import { loadConfig, parseCommandLine, usageError as usageErrorOf, type CascadeConfig } from '@cascade/config';
import { RedisAccountStore, TokenService } from '@cascade/controller';
import { silentLogger, type TokenScope } from '@cascade/protocol';

const USAGE = `usage:
  cascade token relay     --sub <name> [--volunteer] [--ttl <duration>]
  cascade token broadcast --sub <name> [--stream <id>] [--ttl <duration>]
  cascade token watch     --sub <name> [--stream <id>] [--ttl <duration>]
  cascade token operator  --sub <name> [--ttl <duration>]
  cascade token revoke    <token id> [--url <server url>]
The secret comes from the config (CASCADE_AUTH_SECRET or --config file).
Durations: 3600, 90m, 12h, 30d (relay tokens default to auth.relayTokenTtlSec, 1 day, and
running relays renew theirs; others default to 12h). Issuing prints the token on stdout and its
id on stderr: revoke with that id. Revoking writes to Redis when redis.url is set, else asks the
server at --url (default http://127.0.0.1:<http.port>) with an operator token of its own.
  cascade ingest --url <origin> --token <broadcast token> [--video vp8|h264|none] [--no-audio]
                 [--title <text>] [--record] [--input <file> [--loop]]
ingest prints the ffmpeg command (and an SDP) that sends to the ports the origin hands out;
with --input it runs ffmpeg on that file itself and ends the stream when ffmpeg stops.`;

const KINDS = ['relay', 'broadcast', 'watch', 'operator'];

function seconds(d: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

const PROGRAM = { name: 'cascade', usage: USAGE };
const usageError = (what: string): never => usageErrorOf(PROGRAM, what);

const { values, positionals } = parseCommandLine(PROGRAM, {
  allowPositionals: true,
  options: {
    sub: { type: 'string' },
    stream: { type: 'string' },
    volunteer: { type: 'boolean', default: false },
    ttl: { type: 'string' },
    url: { type: 'string' },
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    token: { type: 'string' },
    video: { type: 'string' },
    'no-audio': { type: 'boolean', default: false },
    title: { type: 'string' },
    input: { type: 'string' },
    loop: { type: 'boolean', default: false },
    record: { type: 'boolean', default: false },
  },
});

function secretOf(config: Readonly<CascadeConfig>): string {
  if (!config.auth.secret) throw new Error('no secret: set CASCADE_AUTH_SECRET (the same one the controller uses)');
  return config.auth.secret;
}

async function revoke(config: Readonly<CascadeConfig>, id: string, url: string | undefined): Promise<void> {
  if (config.redis.url && !url) {
    const store = await RedisAccountStore.connect({ url: config.redis.url }, { logger: silentLogger });
    try {
      const fresh = await store.revokeToken(id, Date.now());
      console.log(fresh ? `revoked ${id}` : `${id} was already revoked`);
    } finally {
      await store.close();
    }
    return;
  }
  const base = (url ?? `http://127.0.0.1:${config.http.port}`).replace(/\/+$/, '');
  const operator = new TokenService(secretOf(config), { issuer: config.auth.issuer }).issue({ scope: ['operator'], sub: 'cascade-cli' }, 60);
  let res: Response;
  try {
    res = await fetch(`${base}/api/tokens/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${operator}` },
      body: JSON.stringify({ id }),
    });
  } catch (err) {
    throw new Error(`cannot reach the server at ${base} (${(err as Error).message}); without redis.url the revocation goes through the running server: pass --url`);
  }
  const body = (await res.json().catch(() => ({}))) as { revoked?: boolean; code?: string; message?: string };
  if (!res.ok) throw new Error(`${base} refused: ${body.code ?? res.status} ${body.message ?? ''}`);
  console.log(body.revoked ? `revoked ${id}` : `${id} was already revoked`);
}

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
      url: values.url!,
      token: values.token!,
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
if (scope === 'revoke') {
  if (positionals.length !== 3) usageError(positionals.length < 3 ? 'which token? (its id, as printed when it was issued)' : `unexpected argument '${positionals[3]}'`);
} else {
  if (!KINDS.includes(scope ?? '')) usageError(scope === undefined ? 'token for what? (relay, broadcast, watch, operator; or revoke <id>)' : `unknown token kind '${scope}'`);
  if (positionals.length > 2) usageError(`unexpected argument '${positionals[2]}'`);
  if (!values.sub) usageError('--sub <name> is required');
  if (values.ttl !== undefined && !/^\d+[smhd]?$/.test(values.ttl)) usageError(`bad duration '${values.ttl}'`);
}
try {
  const config = loadConfig({ env: process.env, ...(values.config ? { file: values.config } : {}) });
  if (scope === 'revoke') {
    await revoke(config, positionals[2]!, values.url);
  } else {
    const tokens = new TokenService(secretOf(config), { issuer: config.auth.issuer });
    const ttl = values.ttl !== undefined ? seconds(values.ttl) : scope === 'relay' ? config.auth.relayTokenTtlSec : 12 * 3600;
    const t = tokens.mint(
      {
        scope: [scope as TokenScope],
        sub: values.sub!,
        ...(values.stream ? { stream: values.stream } : {}),
        ...(scope === 'relay' && values.volunteer ? { volunteer: true } : {}),
      },
      ttl,
    );
    process.stdout.write(t.token + '\n');
    process.stderr.write(`token id ${t.id}, valid until ${new Date(t.expiresAt).toISOString()} (revoke: npx cascade token revoke ${t.id})\n`);
  }
} catch (err) {
  console.error(`cascade token: ${(err as Error).message}`);
  process.exit(1);
}
