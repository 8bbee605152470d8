export { TopologyController, systemClock, type Clock, type TopologyControllerOptions, type TopologyNode, type AssignEvent } from './TopologyController.js';
export type { TopologyStore } from './store/TopologyStore.js';
export { MemoryTopologyStore } from './store/MemoryTopologyStore.js';
export { RedisTopologyStore } from './store/RedisTopologyStore.js';
export { KEYS as REDIS_KEYS } from './store/redisScript.js';
export { TokenService } from './auth/TokenService.js';
export { TicketSigner, generateTicketKey } from './auth/TicketSigner.js';
export { RelayGateway, type RelayGatewayOptions } from './RelayGateway.js';
export * from './types.js';
