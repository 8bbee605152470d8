import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/** Keys never written to logs, wherever they appear (tokens, tickets, secrets). */
export const REDACT_PATHS = [
  'token',
  'ticket',
  'secret',
  '*.token',
  '*.ticket',
  '*.secret',
  // pino has no deep wildcard: two levels down covers a request's data ({ request: { data: { token } } }).
  '*.*.token',
  '*.*.ticket',
  '*.*.secret',
  'auth.secret',
  'relay.token',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** A process's root logger: JSON lines, tokens redacted; components add `component` in child(). */
export function createLogger(options: { level: string; base: Record<string, unknown> }, destination?: DestinationStream): PinoLogger {
  const o = { level: options.level, base: options.base, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination ? pino(o, destination) : pino(o);
}
