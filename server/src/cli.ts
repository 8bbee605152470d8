#!/usr/bin/env node
/**
 * Operator commands. `cascade token relay --sub alice [--volunteer] [--ttl 30d]` prints a
 * relay token signed with the deployment secret (auth.secret / CASCADE_AUTH_SECRET).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '@cascade/config';
import { TokenService } from '@cascade/controller';
import type { TokenScope } from '@cascade/protocol';

const USAGE = `usage:
  cascade token relay     --sub <name> [--volunteer] [--ttl <duration>]
  cascade token broadcast --sub <name> [--stream <id>] [--ttl <duration>]
  cascade token watch     --sub <name> [--stream <id>] [--ttl <duration>]
The secret comes from the config (CASCADE_AUTH_SECRET or --config file).
Durations: 3600, 90m, 12h, 30d (default 30d for relays, 12h otherwise).`;

function seconds(d: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sub: { type: 'string' },
    stream: { type: 'string' },
    volunteer: { type: 'boolean', default: false },
    ttl: { type: 'string' },
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
  },
});
const [command, scope] = positionals;
if (values.help || command !== 'token' || !['relay', 'broadcast', 'watch'].includes(scope ?? '') || !values.sub) {
  console.error(USAGE);
  process.exit(values.help ? 0 : 64);
}
try {
  const config = loadConfig({ env: process.env, ...(values.config ? { file: values.config } : {}) });
  if (!config.auth.secret) throw new Error('no secret: set CASCADE_AUTH_SECRET (the same one the controller uses)');
  const tokens = new TokenService(config.auth.secret);
  const ttl = seconds(values.ttl ?? (scope === 'relay' ? '30d' : '12h'));
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
