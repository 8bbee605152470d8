export { RelayNode, type RelayNodeOptions } from './RelayNode.js';
export { StreamPuller } from './StreamPuller.js';
export { PipeIngress } from './PipeIngress.js';
export { startRelay } from './startRelay.js';
export * from './nat/index.js';
