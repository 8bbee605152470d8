import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { CascadeError, type Logger } from '@cascade/protocol';
import { redisOptions, subscriberOptions } from '../store/redisLink.js';
import { CONTROLLER_ENDPOINT_PREFIX, type BusMessage, type MessageBus } from './MessageBus.js';

/** Redis keys of the bus. */
export const BUS_KEYS = {
  /** string: instance id holding endpoint <id> (a connected node), with a TTL refreshed by its heartbeats. */
  route: (endpoint: string) => `cascade:route:${endpoint}`,
  /** pub/sub channel of instance <id>: JSON BusMessage. */
  channel: (instanceId: string) => `cascade:bus:${instanceId}`,
} as const;

/** How long a route lookup is reused (ms): a node that moved is found again by the stale receiver. */
const ROUTE_CACHE_MS = 1000;
/** A message follows a stale route at most this many times. */
const MAX_HOPS = 2;

const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * The bus between controller instances sharing one Redis: each instance subscribes to its own
 * channel; a node's route says which instance holds its connection. Frames to an endpoint this
 * instance holds never touch Redis.
 */
export class RedisMessageBus implements MessageBus {
  readonly kind = 'redis' as const;
  readonly instanceId = randomBytes(6).toString('hex');
  readonly #redis: Redis;
  readonly #sub: Redis;
  readonly #log: Logger;
  readonly #handlers: ((msg: BusMessage) => void)[] = [];
  /** Endpoints held by this instance. */
  readonly #local = new Set<string>();
  readonly #routes = new Map<string, { instance: string | null; until: number }>();
  /** Per destination, the send in flight: frames to one endpoint leave in order. */
  readonly #chains = new Map<string, Promise<boolean>>();
  #closed = false;

  static async connect(options: { url: string; commandTimeoutMs?: number }, deps: { logger: Logger }): Promise<RedisMessageBus> {
    const bus = new RedisMessageBus(options, deps.logger);
    try {
      await Promise.all([bus.#redis.connect(), bus.#sub.connect()]);
      await bus.#sub.subscribe(BUS_KEYS.channel(bus.instanceId));
    } catch (err) {
      await bus.close();
      throw new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', 'message bus cannot connect to Redis', { cause: err });
    }
    return bus;
  }

  private constructor(options: { url: string; commandTimeoutMs?: number }, logger: Logger) {
    this.#log = logger.child({ component: 'RedisMessageBus' });
    this.#redis = new Redis(options.url, redisOptions(options.commandTimeoutMs));
    this.#sub = new Redis(options.url, subscriberOptions());
    this.#redis.on('error', () => {});
    this.#sub.on('error', () => {});
    this.#sub.on('message', (_channel: string, text: string) => {
      let msg: BusMessage;
      try {
        msg = JSON.parse(text) as BusMessage;
      } catch {
        return;
      }
      this.#receive(msg);
    });
  }

  send(msg: BusMessage): Promise<boolean> {
    const prev = this.#chains.get(msg.to) ?? Promise.resolve(true);
    const next = prev.then(
      () => this.#send(msg),
      () => this.#send(msg),
    );
    this.#chains.set(msg.to, next);
    void next.finally(() => {
      if (this.#chains.get(msg.to) === next) this.#chains.delete(msg.to);
    });
    return next;
  }

  onMessage(handler: (msg: BusMessage) => void): void {
    this.#handlers.push(handler);
  }

  async hold(endpoint: string, ttlMs: number): Promise<void> {
    this.#local.add(endpoint);
    this.#routes.delete(endpoint);
    await this.#redis.set(BUS_KEYS.route(endpoint), this.instanceId, 'PX', Math.max(1, Math.round(ttlMs)));
  }

  async release(endpoint: string): Promise<void> {
    this.#local.delete(endpoint);
    this.#routes.delete(endpoint);
    await this.#redis.eval(RELEASE_LUA, 1, BUS_KEYS.route(endpoint), this.instanceId);
  }

  async held(endpoint: string): Promise<boolean> {
    if (this.#local.has(endpoint) || endpoint === `${CONTROLLER_ENDPOINT_PREFIX}${this.instanceId}`) return true;
    if (endpoint.startsWith(CONTROLLER_ENDPOINT_PREFIX)) {
      const res = (await this.#redis.call('PUBSUB', 'NUMSUB', BUS_KEYS.channel(endpoint.slice(CONTROLLER_ENDPOINT_PREFIX.length)))) as [string, number];
      return Number(res[1]) > 0;
    }
    return (await this.#redis.get(BUS_KEYS.route(endpoint))) !== null;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#redis.disconnect();
    this.#sub.disconnect();
  }

  async #send(msg: BusMessage): Promise<boolean> {
    if (this.#closed) return false;
    try {
      const instance = await this.#instanceFor(msg.to);
      if (instance === null) return false;
      if (instance === this.instanceId) {
        queueMicrotask(() => this.#dispatch(msg));
        return true;
      }
      const receivers = await this.#redis.publish(BUS_KEYS.channel(instance), JSON.stringify(msg));
      if (receivers === 0) this.#routes.delete(msg.to);
      return receivers > 0;
    } catch (err) {
      this.#log.debug({ err, to: msg.to }, 'bus send failed');
      return false;
    }
  }

  async #instanceFor(endpoint: string): Promise<string | null> {
    if (endpoint.startsWith(CONTROLLER_ENDPOINT_PREFIX)) return endpoint.slice(CONTROLLER_ENDPOINT_PREFIX.length);
    if (this.#local.has(endpoint)) return this.instanceId;
    const now = Date.now();
    const cached = this.#routes.get(endpoint);
    if (cached && cached.until > now) return cached.instance;
    const instance = await this.#redis.get(BUS_KEYS.route(endpoint));
    this.#routes.set(endpoint, { instance, until: now + ROUTE_CACHE_MS });
    return instance;
  }

  #receive(msg: BusMessage): void {
    const mine = msg.to.startsWith(CONTROLLER_ENDPOINT_PREFIX) || this.#local.has(msg.to);
    if (!mine && (msg.hops ?? 0) < MAX_HOPS) {
      // The sender's route was stale (the node reconnected elsewhere): pass it on once.
      this.#routes.delete(msg.to);
      void this.send({ ...msg, hops: (msg.hops ?? 0) + 1 });
      return;
    }
    this.#dispatch(msg);
  }

  #dispatch(msg: BusMessage): void {
    for (const h of this.#handlers) {
      try {
        h(msg);
      } catch (err) {
        this.#log.error({ err }, 'bus handler threw');
      }
    }
  }
}
