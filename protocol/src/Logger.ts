/**
 * The logging surface shared code depends on. pino's Logger satisfies it; browser code passes
 * a console-backed one. Object first, constant message (pino style).
 */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** A logger that drops everything (tests, and SDK users who do not pass one). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
