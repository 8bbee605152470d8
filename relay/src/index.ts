export { RelayNode, type RelayNodeOptions } from './RelayNode.js';
export { ControlClient } from './ControlClient.js';
export { PipeIngress } from './PipeIngress.js';
export { ProbeResponder } from './ProbeResponder.js';
export { startRelay } from './startRelay.js';
export * from './nat/index.js';
