/**
 * Cascade client SDK: `broadcast()` to go live, `watch()` to view. Works in browsers and, with
 * `WebSocket`, `handlerName` and `MediaStream` options, in Node (werift or wrtc).
 */
export { broadcast, Broadcast, type BroadcastOptions, type BroadcastEvents } from './Broadcast.js';
export { watch, Watch, type WatchOptions, type WatchEvents, type WatchIntegrity, type NodeChangeReason } from './Watch.js';
export { IntegrityVerifier, type IntegrityState, type IntegrityStatus, type IntegrityVerifierOptions } from './integrity/IntegrityVerifier.js';
export type { IntegrityOptions } from './integrity/IntegrityMonitor.js';
export { CascadeEvent, ConnectionState } from './events.js';
export { DEFAULT_SIMULCAST, QUALITIES, isQuality, type Quality, type QualityInfo, type SimulcastLayer } from './quality.js';
export {
  AuthError,
  CapacityError,
  ConnectionError,
  MediaError,
  ProtocolError,
  StreamBusyError,
  StreamEndedError,
  StreamNotFoundError,
  typedError,
  isRetryable,
} from './errors.js';
export { SignalClient, DEFAULT_KEEP_ALIVE, type KeepAliveOptions } from './SignalClient.js';
export { CascadeError, DefaultReconnectPolicy, PROTOCOL_VERSION, type ReconnectPolicy, type StreamState } from '@cascade/protocol';
