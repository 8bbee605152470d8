export { RelayNode, type RelayNodeOptions } from './RelayNode.js';
export { StreamPuller } from './StreamPuller.js';
export { PipeIngress } from './PipeIngress.js';
export { startRelay, type RunningRelay } from './startRelay.js';
export { StatusPage, type StatusPageOptions } from './StatusPage.js';
export * from './nat/index.js';
