/**
 * The envelope around every signalling message: `{ v, id?, type, data }` for requests and
 * notifications, `{ v, id, ok, data | error }` for responses. Requests carry an `id`; the
 * response echoes it. A reply to something unparseable has `id: null`.
 */
import { CascadeError, EnvelopeError, type MessageId, type WireError } from './errors.js';
import { PROTOCOL_VERSION } from './version.js';

export type { MessageId } from './errors.js';

export type Envelope =
  | { kind: 'request'; id: MessageId; type: string; data: unknown }
  | { kind: 'notification'; type: string; data: unknown }
  | { kind: 'response'; id: MessageId | null; ok: true; data: unknown }
  | { kind: 'response'; id: MessageId | null; ok: false; error: ReceivedError };

/**
 * An error as received: shaped like a WireError, its code not yet checked against the registry
 * (fromWireError() does, degrading an unknown code to INTERNAL).
 */
export interface ReceivedError {
  code: string;
  message: string;
}

/** Default limit for one signalling message; SDP-derived parameters stay far below it. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

const TYPE_RE = /^[a-z][A-Za-z]*(\.[a-z][A-Za-z]*){1,2}$/;

function isId(v: unknown): v is MessageId {
  return (typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'string' && v.length > 0 && v.length <= 64);
}

/** Byte length of a UTF-16 string as UTF-8, without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Parse one text frame. Throws CascadeError TOO_LARGE, or EnvelopeError (MALFORMED) whose
 * `requestId` lets the caller reply to the right request when only the payload was bad.
 */
export function parseEnvelope(raw: string, maxBytes = DEFAULT_MAX_MESSAGE_BYTES): Envelope {
  if (raw.length > maxBytes || utf8Length(raw) > maxBytes) {
    throw new CascadeError('CASCADE_ERR_PROTOCOL_TOO_LARGE', `limit is ${maxBytes} bytes`);
  }
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    throw new CascadeError('CASCADE_ERR_PROTOCOL_MALFORMED', 'not JSON');
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    throw new CascadeError('CASCADE_ERR_PROTOCOL_MALFORMED', 'not an object');
  }
  const m = msg as Record<string, unknown>;
  if (m.v !== PROTOCOL_VERSION) throw malformed('unsupported or missing "v"', m.id);
  if ('ok' in m) {
    const id = m.id;
    if (id !== null && !isId(id)) throw malformed('bad "id"', undefined);
    if (m.ok === true) return { kind: 'response', id, ok: true, data: m.data ?? {} };
    const e = m.error;
    if (m.ok === false && isReceivedError(e)) return { kind: 'response', id, ok: false, error: { code: e.code, message: e.message } };
    throw malformed('bad response', undefined);
  }
  if (typeof m.type !== 'string' || !TYPE_RE.test(m.type)) throw malformed('bad "type"', m.id);
  const data = m.data === undefined ? {} : m.data;
  if (m.id === undefined) return { kind: 'notification', type: m.type, data };
  if (!isId(m.id)) throw malformed('bad "id"', undefined);
  return { kind: 'request', id: m.id, type: m.type, data };
}

function isReceivedError(e: unknown): e is ReceivedError {
  return typeof e === 'object' && e !== null && 'code' in e && 'message' in e && typeof e.code === 'string' && typeof e.message === 'string';
}

function malformed(detail: string, id: unknown): EnvelopeError {
  return new EnvelopeError(detail, isId(id) ? id : null);
}

export function encodeRequest(id: MessageId, type: string, data: unknown): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, id, type, data });
}
export function encodeNotification(type: string, data: unknown): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, type, data });
}
export function encodeResult(id: MessageId | null, data: unknown): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, id, ok: true, data });
}
export function encodeError(id: MessageId | null, error: WireError): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, id, ok: false, error });
}
