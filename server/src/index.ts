export { startCascade, type CascadeServer } from './Cascade.js';
export { OriginNode } from './origin/OriginNode.js';
export { PublisherService, newStreamId } from './origin/PublisherService.js';
