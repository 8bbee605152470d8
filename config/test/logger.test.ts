import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/index.js';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6WyJyZWxheSJdfQ.c2lnbmF0dXJlLW5vdC1yZWFs';

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', base: { node: 'n1' } }, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

describe('createLogger() redacts tokens, tickets and secrets', () => {
  it('at the top, one and two levels down, in child loggers and in the config it logs', () => {
    const { logger, lines } = capture();
    logger.info({ token: JWT, ticket: JWT }, 'top');
    logger.child({ component: 'Session', connId: 'c1' }).warn({ request: { type: 'stream.publish', token: JWT } }, 'one level');
    logger.debug({ request: { type: 'relay.register', data: { token: JWT, ticket: JWT } } }, 'two levels');
    logger.info({ auth: { secret: 'hunter2-hunter2-hunter2' }, relay: { token: JWT } }, 'config');
    expect(lines).toHaveLength(4);
    const all = lines.join('');
    expect(all).not.toContain(JWT);
    expect(all).not.toContain('hunter2');
    // What is not secret stays readable.
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[1]).toMatchObject({ component: 'Session', connId: 'c1', msg: 'one level' });
    expect(parsed[2]).toMatchObject({ msg: 'two levels' });
    expect(all).toContain('relay.register');
    expect(all.match(/\[redacted\]/g)).toHaveLength(7);
  });
});
