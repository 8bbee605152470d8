/**
 * Opens a relay's ports on the home router and keeps them open: UPnP-IGD first, then NAT-PMP
 * to the default gateway; learns the router's internet address; maps the media port (UDP and
 * TCP) and the pipe ports (UDP); renews at half the granted lease; removes everything on
 * close(). When nothing works it says in plain words which ports to forward by hand, and keeps
 * trying in the background. Nothing it hears from a router can throw into the caller: every
 * fault is a PortMappingError caught here and turned into a status, a log line and an event.
 *
 * (Over 350 lines: one loop of attempts, map, renew, retry and remove, serialised on one queue
 * over the router client and the mappings it holds, with the plain-words messages beside the
 * states they describe. The router protocols are NatPmpClient and UpnpIgdClient.)
 */
import { DefaultReconnectPolicy, TypedEmitter, type Logger, type ReconnectPolicy } from '@cascade/protocol';
import { PortMappingError, asPortMappingError } from './errors.js';
import { defaultGateway, isNonPublicIPv4, localAddressTowards } from './localNetwork.js';
import { NatPmpClient } from './NatPmpClient.js';
import { UpnpIgdClient, discoverIgd } from './UpnpIgdClient.js';
import type {
  HeldMapping,
  MappingMethod,
  MappingProtocol,
  PortMapper,
  PortMapperEvents,
  PortMapperObserverEvents,
  PortMapperOptions,
  PortMappingFailure,
  PortMappingStatus,
  RouterClient,
  RouterFinder,
} from './PortMapperTypes.js';

const MAX_PIPE_PORTS = 32;
/** close() gives up on the router after this long: a relay must be able to exit. */
const CLOSE_CEILING_MS = 10_000;

interface Wanted {
  protocol: MappingProtocol;
  purpose: 'media' | 'pipe';
  port: number;
}

/** UPnP discovery on the interface towards the gateway, or NAT-PMP to the gateway. */
export const defaultFindRouter: RouterFinder = async (method, o) => {
  const gateway = o.gateway ?? (await defaultGateway());
  if (!gateway) throw new PortMappingError('no-network', 'this computer has no default gateway (no router)');
  const localIp = await localAddressTowards(gateway);
  if (!localIp) throw new PortMappingError('no-network', `no local address towards ${gateway}`);
  if (method === 'nat-pmp') return new NatPmpClient({ gateway, internalIp: localIp });
  const svc = await discoverIgd(localIp, o.timeoutMs);
  if (!svc) return undefined;
  return new UpnpIgdClient(svc, (await localAddressTowards(svc.host)) ?? localIp, o.timeoutMs);
};

/** "40000", "40100-40109", "40100, 40102-40103". */
export function formatPorts(ports: number[]): string {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

function formatDelay(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.max(1, Math.round(ms / 1000))} s`;
}

const METHOD_NAME: Record<MappingMethod, string> = { upnp: 'UPnP', 'nat-pmp': 'NAT-PMP' };

export class PortMapperImpl extends TypedEmitter<PortMapperEvents> implements PortMapper {
  readonly observer = new TypedEmitter<PortMapperObserverEvents>();
  readonly #enabled: boolean;
  readonly #wanted: Wanted[];
  readonly #mediaPort: number;
  readonly #pipePorts: number[];
  readonly #leaseSeconds: number;
  readonly #description: string;
  readonly #gateway: string | undefined;
  readonly #methods: MappingMethod[];
  readonly #policy: ReconnectPolicy;
  readonly #timeoutMs: number;
  readonly #findRouter: RouterFinder;
  readonly #log: Logger;
  #client: RouterClient | undefined;
  #held: HeldMapping[] = [];
  #status: PortMappingStatus;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #op: Promise<void> = Promise.resolve();
  #failingSince = 0;
  /** The router and our address towards it, as last learned (for the by-hand instructions when it does not answer). */
  #lastSeen: { gateway?: string; internalIp?: string } = {};
  #closing: Promise<void> | undefined;

  constructor(options: PortMapperOptions, deps: { logger: Logger; findRouter?: RouterFinder }) {
    super();
    const port = (p: unknown, what: string) => {
      if (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535) throw new TypeError(`${what} must be a port number (1..65535)`);
      return p as number;
    };
    this.#mediaPort = port(options.mediaPort, 'mediaPort');
    this.#pipePorts = [];
    if (options.pipePorts) {
      const min = port(options.pipePorts.min, 'pipePorts.min');
      const max = port(options.pipePorts.max, 'pipePorts.max');
      if (max < min || max - min + 1 > MAX_PIPE_PORTS) throw new TypeError(`pipePorts must be a range of 1..${MAX_PIPE_PORTS} ports`);
      for (let p = min; p <= max; p++) this.#pipePorts.push(p);
    }
    this.#leaseSeconds = options.leaseSeconds ?? 3600;
    if (!Number.isInteger(this.#leaseSeconds) || this.#leaseSeconds < 2 || this.#leaseSeconds > 604_800) throw new TypeError('leaseSeconds must be an integer in 2..604800');
    this.#enabled = options.enabled ?? true;
    this.#description = (options.description ?? 'cascade-relay').slice(0, 64);
    this.#gateway = options.gateway;
    this.#methods = options.methods ?? ['upnp', 'nat-pmp'];
    this.#policy = options.retryPolicy ?? new DefaultReconnectPolicy({ initialDelayMs: 30_000, baseDelayMs: 30_000, maxDelayMs: 600_000, jitter: 0.2, maxElapsedMs: Infinity });
    this.#timeoutMs = options.requestTimeoutMs ?? 3000;
    this.#findRouter = deps.findRouter ?? defaultFindRouter;
    this.#log = deps.logger.child({ component: 'PortMapper' });
    this.#wanted = [
      { protocol: 'udp', purpose: 'media', port: this.#mediaPort },
      { protocol: 'tcp', purpose: 'media', port: this.#mediaPort },
      ...this.#pipePorts.map((p) => ({ protocol: 'udp' as const, purpose: 'pipe' as const, port: p })),
    ];
    this.#status = this.#enabled
      ? { state: 'starting', mappings: [], missing: this.#allWanted(), message: 'asking the router to open ports…', failedAttempts: 0 }
      : { state: 'disabled', mappings: [], missing: this.#allWanted(), message: this.#disabledMessage(), failedAttempts: 0 };
  }

  get status(): PortMappingStatus {
    return structuredClone(this.#status);
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** The first attempt; resolves when it is done, whatever its outcome. Never rejects. */
  start(): Promise<void> {
    if (!this.#enabled || this.closed) return Promise.resolve();
    return this.#enqueue(() => this.#attempt(false));
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const removal = (async () => {
      await this.#op; // an attempt in flight finishes (bounded by its request timeouts) first
      const client = this.#client;
      const held = this.#held;
      if (client && held.length > 0) {
        const results = await Promise.allSettled(held.map((m) => client.unmap({ protocol: m.protocol, internalPort: m.internalPort, externalPort: m.externalPort })));
        const failed = results.filter((r) => r.status === 'rejected').length;
        if (failed) this.#log.warn({ failed, gateway: client.gateway }, 'could not remove every port mapping; the router drops them when their lease ends');
        else this.#log.info({ removed: held.length, gateway: client.gateway }, 'port mappings removed');
      }
      client?.close();
      return held.length > 0;
    })().catch((err: unknown) => {
      this.#log.warn({ err }, 'removing port mappings failed');
      return true;
    });
    let ceiling: ReturnType<typeof setTimeout> | undefined;
    const hadMappings = await Promise.race([removal, new Promise<boolean>((r) => (ceiling = setTimeout(() => r(true), CLOSE_CEILING_MS)))]);
    clearTimeout(ceiling);
    this.#held = [];
    this.#client = undefined;
    this.#status = { ...this.#status, state: 'closed', mappings: [], nextAttemptAt: undefined, message: 'port mapping stopped' };
    if (hadMappings) this.observer.safeEmit('unmapped', this.status);
    this.observer.safeEmit('close');
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    this.#op = this.#op.then(fn).catch((err: unknown) => this.#log.error({ err }, 'port mapping step failed unexpectedly'));
    return this.#op;
  }

  #schedule(delayMs: number, renew: boolean): number {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.closed) void this.#enqueue(() => this.#attempt(renew));
    }, delayMs);
    this.#timer.unref?.();
    return Date.now() + delayMs;
  }

  /** One attempt: renew with the current router, or find one and map everything. */
  async #attempt(renew: boolean): Promise<void> {
    if (this.closed) return;
    const problems: PortMappingError[] = [];
    if (renew && this.#client) {
      try {
        return await this.#mapAll(this.#client, true);
      } catch (err) {
        problems.push(asPortMappingError(err));
        this.#log.warn({ err, gateway: this.#client.gateway }, 'port mapping renewal failed; looking for the router again');
      }
    }
    for (const method of this.#methods) {
      if (this.closed) return;
      let client: RouterClient | undefined;
      try {
        client = await this.#findRouter(method, { gateway: this.#gateway, timeoutMs: this.#timeoutMs });
      } catch (err) {
        problems.push(asPortMappingError(err));
        continue;
      }
      if (!client) {
        problems.push(PortMappingError.noAnswer(`no ${METHOD_NAME[method]} router answered`));
        continue;
      }
      this.#lastSeen = { gateway: client.gateway, internalIp: client.internalIp };
      try {
        return await this.#mapAll(client, false);
      } catch (err) {
        problems.push(asPortMappingError(err));
        this.#log.warn({ err, method, gateway: client.gateway }, 'port mapping failed');
        if (client !== this.#client) client.close();
      }
    }
    this.#failed(problems);
  }

  /** Map every wanted port through `client`; throws (after undoing this round's new mappings) unless the media port is mapped both ways. */
  async #mapAll(client: RouterClient, renewal: boolean): Promise<void> {
    const externalIp = await client.externalIp();
    const sameRouter = client === this.#client;
    const held: HeldMapping[] = [];
    const missing: Wanted[] = [];
    let mediaError: PortMappingError | undefined;
    for (const w of this.#wanted) {
      try {
        const granted = await client.map({ protocol: w.protocol, internalPort: w.port, externalPort: w.port, leaseSeconds: this.#leaseSeconds, description: this.#description });
        if (granted.externalPort !== w.port) {
          // Viewers are told the media port itself: a mapping on another external port is useless.
          await client.unmap({ protocol: w.protocol, internalPort: w.port, externalPort: granted.externalPort }).catch(() => undefined);
          throw new PortMappingError('conflict', `the router offered ${w.protocol.toUpperCase()} ${granted.externalPort} instead of ${w.port} (taken by another device)`);
        }
        const lease = Number.isFinite(granted.leaseSeconds) && granted.leaseSeconds > 0 ? Math.min(granted.leaseSeconds, this.#leaseSeconds) : this.#leaseSeconds;
        held.push({ ...w, internalPort: w.port, externalPort: w.port, expiresAt: Date.now() + lease * 1000 });
      } catch (err) {
        const e = asPortMappingError(err);
        missing.push(w);
        if (w.purpose === 'media') mediaError ??= e;
        this.#log.warn({ err: e, protocol: w.protocol, port: w.port, gateway: client.gateway }, 'router did not map a port');
      }
    }
    if (mediaError) {
      if (!sameRouter) await Promise.allSettled(held.map((m) => client.unmap({ protocol: m.protocol, internalPort: m.internalPort, externalPort: m.externalPort })));
      throw mediaError;
    }
    if (!sameRouter && this.#client) {
      // A new router (or protocol) took over: the old one's mappings are dropped, not deleted (it is gone or failing).
      this.#client.close();
    }
    const changed = !renewal || !sameRouter || this.#status.externalIp !== externalIp || this.#status.state !== 'mapped';
    this.#client = client;
    this.#held = held;
    this.#failingSince = 0;
    const shortest = Math.min(...held.map((m) => m.expiresAt)) - Date.now();
    const behindAnotherNat = isNonPublicIPv4(externalIp);
    const base = {
      state: 'mapped' as const,
      method: client.method,
      gateway: client.gateway,
      internalIp: client.internalIp,
      externalIp,
      behindAnotherNat,
      mappings: held,
      missing: missing.map((w) => ({ protocol: w.protocol, purpose: w.purpose, port: w.port })),
      failedAttempts: 0,
    };
    const nextAttemptAt = this.closed ? undefined : this.#schedule(Math.max(1000, shortest / 2), true);
    this.#status = { ...base, nextAttemptAt, message: this.#mappedMessage(base) };
    if (changed) {
      this.#log.info({ method: client.method, gateway: client.gateway, externalIp, ports: held.length, missing: missing.length }, 'router opened the relay ports');
      this.safeEmit('mapped', this.status);
      this.observer.safeEmit('mapped', this.status);
    } else {
      this.#log.debug({ gateway: client.gateway, ports: held.length }, 'port mappings renewed');
      this.safeEmit('renewed', this.status);
      this.observer.safeEmit('renewed', this.status);
    }
  }

  #failed(problems: PortMappingError[]): void {
    if (this.closed) return;
    const rank: PortMappingFailure[] = ['refused', 'conflict', 'malformed', 'no-network', 'no-answer'];
    const worst = [...problems].sort((a, b) => rank.indexOf(a.reason) - rank.indexOf(b.reason))[0] ?? PortMappingError.noAnswer('no protocol to try');
    const failedAttempts = this.#status.state === 'failed' ? this.#status.failedAttempts + 1 : 1;
    if (failedAttempts === 1) this.#failingSince = Date.now();
    const delay = this.#policy.nextRetryDelayMs({ retryCount: failedAttempts - 1, elapsedMs: Date.now() - this.#failingSince });
    const nextAttemptAt = delay === null ? undefined : this.#schedule(delay, false);
    this.#held = [];
    const internalIp = this.#lastSeen.internalIp;
    const gateway = this.#gateway ?? this.#lastSeen.gateway;
    this.#status = {
      state: 'failed',
      gateway,
      internalIp,
      mappings: [],
      missing: this.#allWanted(),
      problem: { reason: worst.reason, detail: worst.message },
      failedAttempts,
      nextAttemptAt,
      message: this.#failedMessage(problems, gateway, internalIp, delay),
    };
    this.#log.warn({ reason: worst.reason, detail: problems.map((p) => p.message), failedAttempts }, 'could not open the relay ports on the router');
    this.safeEmit('failed', this.status);
    this.observer.safeEmit('failed', this.status);
  }

  #allWanted(): PortMappingStatus['missing'] {
    return this.#wanted.map((w) => ({ protocol: w.protocol, purpose: w.purpose, port: w.port }));
  }

  #portsInWords(): string {
    return `UDP and TCP ${this.#mediaPort} (media)${this.#pipePorts.length ? `, UDP ${formatPorts(this.#pipePorts)} (pipes between relays)` : ''}`;
  }

  #disabledMessage(): string {
    return `port mapping is off: if this computer is behind a router, forward ${this.#portsInWords()} to it by hand`;
  }

  #mappedMessage(s: Pick<PortMappingStatus, 'method' | 'gateway' | 'internalIp' | 'externalIp' | 'behindAnotherNat' | 'missing'>): string {
    const pipes = this.#pipePorts.filter((p) => !s.missing.some((m) => m.port === p));
    let text = `your router (${s.gateway}, ${METHOD_NAME[s.method!]}) opened UDP and TCP ${this.#mediaPort}${pipes.length ? ` and UDP ${formatPorts(pipes)}` : ''} for this computer (${s.internalIp}); the internet reaches it at ${s.externalIp}`;
    if (s.missing.length) text += `. It did not open UDP ${formatPorts(s.missing.map((m) => m.port))} (pipes between relays): forward those to ${s.internalIp} by hand`;
    if (s.behindAnotherNat) text += `. But the router's own internet address ${s.externalIp} is private: your provider puts another NAT in front of it, which no setting at home opens, so viewers may not reach this relay`;
    return text;
  }

  #failedMessage(problems: PortMappingError[], gateway: string | undefined, internalIp: string | undefined, delayMs: number | null): string {
    const why = problems.some((p) => p.reason === 'no-network')
      ? (problems.find((p) => p.reason === 'no-network')!.message)
      : problems.every((p) => p.reason === 'no-answer')
        ? `no ${this.#methods.map((m) => METHOD_NAME[m]).join(' or ')} answer from ${gateway ?? 'the router'}; it may have them switched off`
        : problems.filter((p) => p.reason !== 'no-answer').map((p) => p.message).join('; ');
    const retry = delayMs === null ? 'Not trying again.' : `Trying again in ${formatDelay(delayMs)}.`;
    return `could not open this relay's ports on your router automatically (${why}). Forward these ports on your router to this computer${internalIp ? ` (${internalIp})` : ''}: ${this.#portsInWords()}. ${retry}`;
  }
}

/**
 * Start port mapping (see PortMapper); resolves after the first attempt, mapped or not (the
 * status and the `mapped` / `failed` events say which). Throws only TypeError for bad options.
 */
export async function createPortMapper(options: PortMapperOptions, deps: { logger: Logger; findRouter?: RouterFinder }): Promise<PortMapper> {
  const m = new PortMapperImpl(options, deps);
  await m.start();
  return m;
}
