/**
 * Signalling protocol version. The client sends it as the `v` query parameter of the
 * WebSocket URL; a node refuses unsupported versions before the upgrade completes.
 * Bump it on any incompatible change to a message shape.
 */
export const PROTOCOL_VERSION = 1;

/** Versions a node accepts. Kept as a list so a node can serve old clients during a rollout. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];
