import type { ReconnectPolicy, TypedEmitter } from '@cascade/protocol';

export type MappingProtocol = 'udp' | 'tcp';
export type MappingMethod = 'upnp' | 'nat-pmp';

/** Why a router conversation failed (stable strings, for logs and tests). */
export type PortMappingFailure =
  /** Nobody answered (no UPnP device found, NAT-PMP timed out or was refused by ICMP). */
  | 'no-answer'
  /** The router answered, but with something that is not the protocol (garbage, truncated, oversized). */
  | 'malformed'
  /** The router understood and said no (NAT-PMP result code, UPnP fault). */
  | 'refused'
  /** The router gave the port to someone else, or offered another external port. */
  | 'conflict'
  /** No default gateway, no local address: the machine itself is not on a network. */
  | 'no-network';

export interface PortMapperOptions {
  /** false: do nothing (`--no-port-mapping`); status says so. Default true. */
  enabled?: boolean;
  /** The media port (WebRtcServer), mapped for UDP and TCP. */
  mediaPort: number;
  /** UDP ports of pipes between nodes, mapped one by one (at most 32). Default: none. */
  pipePorts?: { min: number; max: number };
  /** Lease asked for, s; renewed at half of what the router grants. Default 3600. */
  leaseSeconds?: number;
  /** Shown in the router's mapping table. Default 'cascade-relay'. */
  description?: string;
  /** The router's address for NAT-PMP (and the interface for UPnP discovery). Default: this machine's default gateway. */
  gateway?: string;
  /** Which protocols to try, in order. Default ['upnp', 'nat-pmp']. */
  methods?: MappingMethod[];
  /** Delay before each new attempt after a failed one. Default 30 s doubling to 10 min, for ever. */
  retryPolicy?: ReconnectPolicy;
  /** Ceiling of one request to the router (and of UPnP discovery), ms. Default 3000. */
  requestTimeoutMs?: number;
}

export interface HeldMapping {
  protocol: MappingProtocol;
  purpose: 'media' | 'pipe';
  internalPort: number;
  externalPort: number;
  /** When the router forgets it unless renewed (ms since the epoch). */
  expiresAt: number;
}

export type PortMappingState = 'disabled' | 'starting' | 'mapped' | 'failed' | 'closed';

export interface PortMappingStatus {
  state: PortMappingState;
  method?: MappingMethod;
  /** The router that answered (or was asked). */
  gateway?: string;
  /** This machine's address as the router sees it: where forwarded ports must point. */
  internalIp?: string;
  /** The router's internet address, as it reports it. */
  externalIp?: string;
  /** The router's own internet address is private or shared (CGNAT): mappings on it cannot make this machine reachable from the internet. */
  behindAnotherNat?: boolean;
  mappings: HeldMapping[];
  /** Ports that should be mapped and are not (all of them when state is 'failed'). */
  missing: { protocol: MappingProtocol; purpose: 'media' | 'pipe'; port: number }[];
  problem?: { reason: PortMappingFailure; detail: string };
  /** Plain words for the volunteer: what was opened, or which ports to forward by hand. */
  message: string;
  /** When the next attempt (after a failure) or renewal is due (ms since the epoch). */
  nextAttemptAt?: number;
  /** Attempts since the last success (0 when mapped). */
  failedAttempts: number;
}

export type PortMapperEvents = {
  /** Mappings made (first time, or again after a failure or a new external address). */
  mapped: [status: PortMappingStatus];
  /** Mappings renewed before they expired. */
  renewed: [status: PortMappingStatus];
  /** An attempt failed: `status.message` says which ports to forward by hand; another attempt follows. */
  failed: [status: PortMappingStatus];
  listenererror: [event: string, err: unknown];
};

export type PortMapperObserverEvents = PortMapperEvents & {
  /** The mappings were removed from the router (close()). */
  unmapped: [status: PortMappingStatus];
  close: [];
};

/**
 * Opens this relay's ports on the home router (UPnP-IGD, then NAT-PMP), keeps them open, and
 * says in plain words what to forward by hand when it cannot. Never throws into its caller:
 * every router fault becomes a status and a log line.
 */
export interface PortMapper extends TypedEmitter<PortMapperEvents> {
  readonly observer: TypedEmitter<PortMapperObserverEvents>;
  readonly status: PortMappingStatus;
  readonly closed: boolean;
  /** Remove the mappings from the router (bounded in time) and stop. Idempotent: later calls return the same promise. Never rejects. */
  close(): Promise<void>;
}

/** A conversation with one router over one protocol (internal seam; tests substitute it). */
export interface RouterClient {
  readonly method: MappingMethod;
  /** The router's address. */
  readonly gateway: string;
  /** Our address as the router sees it. */
  readonly internalIp: string;
  externalIp(): Promise<string>;
  /** Map; resolves with what the router granted. */
  map(m: { protocol: MappingProtocol; internalPort: number; externalPort: number; leaseSeconds: number; description: string }): Promise<{ externalPort: number; leaseSeconds: number }>;
  unmap(m: { protocol: MappingProtocol; internalPort: number; externalPort: number }): Promise<void>;
  close(): void;
}

/** Finds a router speaking `method`, or resolves undefined (never rejects: faults are PortMappingErrors thrown by the client's calls). */
export type RouterFinder = (method: MappingMethod, o: { gateway?: string; timeoutMs: number }) => Promise<RouterClient | undefined>;
