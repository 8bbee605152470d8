/**
 * Wire shapes of every signalling message, as TypeBox schemas (so the same definition gives
 * the TypeScript type and the run-time validator used at each edge).
 *
 * Two endpoints speak this protocol:
 * - the public `/ws` (an origin's or a controller's): broadcasters and viewers. A viewer the
 *   controller places on another node keeps talking to this endpoint: its messages are carried
 *   to that node through a tunnel (below) and the answers come back the same way;
 * - a controller's `/control`: media nodes (relays, and origins without a controller of their
 *   own) registering, heartbeating, asking for placements, and carrying tunnels: a tunnel is a
 *   node session (the `/ws` protocol) hosted on a media node, its frames wrapped in `tunnel.*`
 *   notifications. Relays need no port of their own for signalling.
 *
 * mediasoup's own objects (RTP parameters, DTLS parameters, …) are checked here for shape
 * only; mediasoup validates their content and its errors are mapped to coded errors.
 */
// One file per endpoint and role under messages/; this module re-exports their public shapes so
// that importers keep importing from here (or from the package).
export * from './messages/common.js';
export * from './messages/node.js';
export * from './messages/control.js';
export { ConsumerInfo, ENDPOINT_REQUESTS, IntegrityAnchor, Quality, ViewerReceipt } from './messages/viewer.js';
export { PipeProducerInfo } from './messages/pipe.js';
