import { pino, type Logger as PinoLogger } from 'pino';

/** Keys never written to logs, wherever they appear. */
export const REDACT_PATHS = [
  'token',
  'ticket',
  'secret',
  '*.token',
  '*.ticket',
  '*.secret',
  'auth.secret',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** The process's root logger: JSON lines, tokens redacted. */
export function createLogger(options: { level: string; node: string; role: string }): PinoLogger {
  return pino({
    level: options.level,
    base: { node: options.node, role: options.role },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  });
}
