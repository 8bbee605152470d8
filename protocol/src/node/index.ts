/** Node-only helpers of the protocol (not part of the browser bundle). */
export * from './httpUpgrade.js';
export * from './WsEndpoint.js';
export { openWebSocket } from './openWebSocket.js';
export * from './GuardedHttpServer.js';
export { relayIdFor } from './relayId.js';
export * from './PingLiveness.js';
