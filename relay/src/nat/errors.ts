import type { PortMappingFailure } from './PortMapperTypes.js';

/** A router conversation failed; `reason` says how (the PortMapper turns it into a status, never a throw). */
export class PortMappingError extends Error {
  readonly reason: PortMappingFailure;

  constructor(reason: PortMappingFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PortMappingError';
    this.reason = reason;
  }

  static noAnswer(what: string): PortMappingError {
    return new PortMappingError('no-answer', what);
  }

  static malformed(what: string): PortMappingError {
    return new PortMappingError('malformed', what);
  }
}

export function asPortMappingError(err: unknown): PortMappingError {
  if (err instanceof PortMappingError) return err;
  const e = err as { code?: string; message?: string };
  if (e?.code === 'ECONNREFUSED' || e?.code === 'EHOSTUNREACH' || e?.code === 'ENETUNREACH' || e?.code === 'ETIMEDOUT' || e?.code === 'ECONNRESET') {
    return new PortMappingError('no-answer', `${e.code}`, { cause: err });
  }
  return new PortMappingError('malformed', String(e?.message ?? err).slice(0, 200), { cause: err });
}
