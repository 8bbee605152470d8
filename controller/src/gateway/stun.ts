/**
 * Just enough STUN (RFC 5389, with the ICE attributes of RFC 8445) for the controller to check
 * that a media node's WebRTC port answers from where viewers will reach it: a Binding request
 * authenticated with the ICE credentials of a transport the node keeps for that purpose, and
 * the check of the node's answer. mediasoup's ICE server answers only a request whose USERNAME
 * starts with one of its transports' fragments and whose MESSAGE-INTEGRITY uses that
 * transport's password, and signs its answer with the same password: an answer proves that
 * this node's mediasoup, not any host at that address, received the request.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const ATTR = {
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  PRIORITY: 0x0024,
  ICE_CONTROLLING: 0x802a,
  FINGERPRINT: 0x8028,
} as const;
const FINGERPRINT_XOR = 0x5354554e;

function attribute(type: number, value: Buffer): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

/** Message bytes with the header's length field set as if the message ended after `bodyLength` bytes of attributes. */
function withLength(message: Buffer, bodyLength: number): Buffer<ArrayBufferLike> {
  const copy = Buffer.from(message);
  copy.writeUInt16BE(bodyLength, 2);
  return copy;
}

/** Header and attributes, then MESSAGE-INTEGRITY (with `pwd`) and FINGERPRINT, the header's length set. */
function signed(header: Buffer, attrs: Buffer, pwd: string): Buffer<ArrayBufferLike> {
  // MESSAGE-INTEGRITY covers everything before it, with the length counting it (24 bytes).
  let message: Buffer<ArrayBufferLike> = Buffer.concat([header, attrs]);
  const hmac = createHmac('sha1', pwd).update(withLength(message, attrs.length + 24)).digest();
  message = Buffer.concat([message, attribute(ATTR.MESSAGE_INTEGRITY, hmac)]);
  // FINGERPRINT covers everything before it, with the length counting it (8 bytes).
  const bodyLength = message.length - 20 + 8;
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE((crc32(withLength(message, bodyLength)) ^ FINGERPRINT_XOR) >>> 0, 0);
  return withLength(Buffer.concat([message, attribute(ATTR.FINGERPRINT, fp)]), bodyLength);
}

/** A Binding request to the ICE server whose local fragment is `ufrag`, signed with its `pwd`. */
export function bindingRequest(ufrag: string, pwd: string): { message: Buffer<ArrayBufferLike>; transactionId: Buffer } {
  const transactionId = randomBytes(12);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(BINDING_REQUEST, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(0x6e0001ff, 0);
  const attrs = Buffer.concat([
    attribute(ATTR.USERNAME, Buffer.from(`${ufrag}:cascadeprobe`, 'utf8')),
    attribute(ATTR.PRIORITY, priority),
    attribute(ATTR.ICE_CONTROLLING, randomBytes(8)),
  ]);
  return { message: signed(header, attrs, pwd), transactionId };
}

/** The transaction id of a STUN success response, or undefined if `msg` is not one. */
export function successTransactionId(msg: Buffer): Buffer | undefined {
  if (msg.length < 20 || msg.readUInt16BE(0) !== BINDING_SUCCESS || msg.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  if (msg.readUInt16BE(2) + 20 !== msg.length) return undefined;
  return msg.subarray(8, 20);
}

/** Whether a success response carries a MESSAGE-INTEGRITY made with `pwd` (the node's own answer). */
export function verifyIntegrity(msg: Buffer, pwd: string): boolean {
  let offset = 20;
  while (offset + 4 <= msg.length) {
    const type = msg.readUInt16BE(offset);
    const len = msg.readUInt16BE(offset + 2);
    const end = offset + 4 + len;
    if (end > msg.length) return false;
    if (type === ATTR.MESSAGE_INTEGRITY) {
      if (len !== 20) return false;
      const expected = createHmac('sha1', pwd).update(withLength(msg.subarray(0, offset), end - 20)).digest();
      return expected.equals(msg.subarray(offset + 4, end));
    }
    offset = offset + 4 + Math.ceil(len / 4) * 4;
  }
  return false;
}

/**
 * The answer an ICE server with password `pwd` gives to a Binding request (XOR-MAPPED-ADDRESS,
 * MESSAGE-INTEGRITY, FINGERPRINT), or undefined for anything else. What mediasoup does; here
 * for stand-in media nodes (test relays speaking the control protocol without a worker).
 */
export function bindingSuccess(request: Buffer, pwd: string, from: { address: string; port: number }): Buffer | undefined {
  if (request.length < 20 || request.readUInt16BE(0) !== BINDING_REQUEST || request.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  const header = Buffer.alloc(20);
  header.writeUInt16BE(BINDING_SUCCESS, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  request.copy(header, 8, 8, 20);
  // XOR-MAPPED-ADDRESS (IPv4 only: stand-ins listen on IPv4).
  const xma = Buffer.alloc(8);
  xma.writeUInt8(0, 0);
  xma.writeUInt8(0x01, 1);
  xma.writeUInt16BE(from.port ^ (MAGIC_COOKIE >>> 16), 2);
  const ip = from.address.replace(/^::ffff:/, '').split('.').map(Number);
  xma.writeUInt32BE(((((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0) ^ MAGIC_COOKIE) >>> 0, 4);
  return signed(header, attribute(0x0020, xma), pwd);
}
