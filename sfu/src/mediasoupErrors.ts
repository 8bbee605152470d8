import { CascadeError, type ErrorCode } from '@cascade/protocol';

/**
 * mediasoup rejects bad client input (RTP parameters, DTLS parameters, capabilities) with
 * TypeError, from its Node layer or from the worker; anything else is our fault.
 */
/**
 * Plain Errors the worker throws for what the client chose: a MID, RID or SSRC that another
 * producer of the same transport already uses (fuzzing found two producers with mid 0).
 */
const CLIENT_CLASHES = /already exists in RTP listener/;

export function fromMediasoup(err: unknown, inputCode: ErrorCode): CascadeError {
  if (err instanceof CascadeError) return err;
  // UnsupportedError: a codec or feature the router does not offer (also the client's doing).
  if (err instanceof TypeError || (err as Error)?.name === 'UnsupportedError' || CLIENT_CLASHES.test((err as Error)?.message ?? '')) {
    return new CascadeError(inputCode, (err as Error).message.replace(/ \[method:.*\]$/, ''), { cause: err });
  }
  return new CascadeError('CASCADE_ERR_INTERNAL', undefined, { cause: err });
}

/** Await a mediasoup call, mapping its failure. */
export async function ms<T>(call: Promise<T>, inputCode: ErrorCode = 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS'): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw fromMediasoup(err, inputCode);
  }
}
