import { pino } from 'pino';

/** JSON logs with tokens redacted (the relay token is on the command line, never in logs). */
export function createLogger(level: string) {
  return pino({
    level,
    base: { role: 'relay' },
    redact: { paths: ['token', 'ticket', '*.token', '*.ticket', 'relay.token'], censor: '[redacted]' },
  });
}
