export { TopologyController, systemClock, type Clock, type TopologyControllerOptions, type TopologyNode, type AssignEvent, type CondemnEvent } from './TopologyController.js';
export type { TopologyStore, TopologyStoreOptions } from './store/TopologyStore.js';
export { MemoryTopologyStore } from './store/MemoryTopologyStore.js';
export { RedisTopologyStore } from './store/RedisTopologyStore.js';
export { KEYS as REDIS_KEYS } from './store/redisScript.js';
export { TokenService } from './auth/TokenService.js';
export { TicketSigner, generateTicketKey } from './auth/TicketSigner.js';
export { RelayGateway, type RelayGatewayOptions } from './gateway/RelayGateway.js';
export { MediaProbe } from './gateway/MediaProbe.js';
export { bindingRequest, bindingSuccess, verifyIntegrity } from './gateway/stun.js';
export { clientAddress, isPublicUnicast, normalizeIp } from './gateway/addresses.js';
export { TunnelRouter, FrontTunnel, type NodeLink } from './tunnels/TunnelRouter.js';
export { controllerEndpoint, type BusMessage, type MessageBus } from './tunnels/MessageBus.js';
export { MemoryMessageBus, MemoryBusHub } from './tunnels/MemoryMessageBus.js';
export { RedisMessageBus, BUS_KEYS } from './tunnels/RedisMessageBus.js';
export { LocalControlPlane } from './LocalControlPlane.js';
export * from './types.js';
export { runPlacementSim, mixedPopulation, seededRandom, depthBound, minimalDepth, treeViolations, type PlacementSimOptions, type PlacementSimResult, type SimRelaySpec } from './sim/placementSim.js';
export { type IssuedToken, type RevocationCheck, type TokenServiceOptions } from './auth/TokenService.js';
export { RevocationList, type RevocationStore, type RevocationListEvents, type RevocationListOptions } from './auth/RevocationList.js';
export { RelayTokens, type RelayTokensOptions, type RevocableRelay } from './auth/RelayTokens.js';
export { deriveKey } from './auth/keys.js';
export {
  foldName,
  MAX_ACCOUNT_TOKENS,
  type AccountRecord,
  type AccountStore,
  type AccountTokenRecord,
  type SessionRecord,
} from './accounts/AccountStore.js';
export { MemoryAccountStore } from './accounts/MemoryAccountStore.js';
export { RedisAccountStore, type RedisAccountStoreOptions } from './accounts/RedisAccountStore.js';
export { ACCOUNT_KEYS } from './accounts/accountsLua.js';
export { Argon2Hasher, type PasswordHasher } from './accounts/PasswordHasher.js';
export { AccountService, type AccountServiceOptions, type AccountServiceDeps, type AccountServiceObserverEvents, type SignedIn } from './accounts/AccountService.js';
export {
  balanceOf,
  utcDay,
  HISTORY_MAX,
  type LedgerStore,
  type LedgerEntry,
  type LedgerHistoryEntry,
  type DailyTotals,
  type ReceiptOutcome,
  type Settlement,
  type ViewerReceiptInput,
  type ChildConfirmationInput,
  type NodeCountInput,
} from './credits/LedgerStore.js';
export { MemoryLedgerStore } from './credits/MemoryLedgerStore.js';
export { RedisLedgerStore, type RedisLedgerStoreOptions } from './credits/RedisLedgerStore.js';
export { CreditService, type CreditServiceOptions, type CreditServiceDeps, type CreditServiceObserverEvents, type ReceiptResult } from './credits/CreditService.js';
export { registerControllerMetrics, registerAccountMetrics } from './metrics.js';
export { IntegrityJudge, type Prober, type IntegrityJudgeOptions, type IntegrityJudgeObserverEvents } from './integrity/IntegrityJudge.js';
