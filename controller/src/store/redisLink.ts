import { Redis } from 'ioredis';
import { CascadeError, type Logger } from '@cascade/protocol';

/** A failure of a Redis call as the store's coded error. */
export function storeError(err: unknown): CascadeError {
  if (err instanceof CascadeError) return err;
  // A ReplyError is Redis answering (a script bug), not Redis being away.
  if ((err as Error).name === 'ReplyError') return new CascadeError('CASCADE_ERR_INTERNAL', (err as Error).message, { cause: err });
  return new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', (err as Error).message, { cause: err });
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** Connection settings every Cascade store uses: fail fast while Redis is away, reconnect quickly for ever. */
export function redisOptions(commandTimeoutMs: number | undefined) {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs ?? 2000,
    // Keep retrying for ever, quickly: a restarted Redis should be picked up within a second.
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
  };
}

/**
 * Settings of a pub/sub connection: like the stores' but its SUBSCRIBE may wait for the
 * connection (ioredis subscribes again by itself after a reconnect), and no command timeout
 * (a subscribed connection waits for messages, not answers).
 */
export function subscriberOptions() {
  return { ...redisOptions(undefined), enableOfflineQueue: true, commandTimeout: undefined };
}

/**
 * One Redis connection with the store conventions: one Lua script registered as a command,
 * every failure a coded error (CASCADE_ERR_STORE_UNAVAILABLE while Redis is away, or after
 * close()), and one log line per outage rather than one per failed call.
 */
export class RedisLink {
  readonly redis: Redis;
  readonly #scriptName: string;
  #closed = false;

  constructor(
    url: string,
    script: { name: string; lua: string },
    deps: {
      logger: Logger;
      commandTimeoutMs?: number | undefined;
      /** ioredis auto-pipelining. Default false. */
      autoPipelining?: boolean | undefined;
      /** Every time the connection is ready again after the first: Redis may have restarted empty. */
      onReconnect?: () => void;
    },
  ) {
    this.redis = new Redis(url, { ...redisOptions(deps.commandTimeoutMs), enableAutoPipelining: deps.autoPipelining ?? false });
    this.redis.defineCommand(script.name, { numberOfKeys: 0, lua: script.lua });
    this.#scriptName = script.name;
    let down = false;
    let connected = false;
    this.redis.on('error', (err) => {
      if (!down) deps.logger.warn({ err }, 'redis unreachable');
      down = true;
    });
    this.redis.on('ready', () => {
      if (down) deps.logger.info({}, 'redis reachable again');
      down = false;
      if (connected) deps.onReconnect?.();
      connected = true;
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  async connect(url: string): Promise<void> {
    try {
      await this.redis.connect();
    } catch (err) {
      this.close();
      throw new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', `cannot connect to ${redactUrl(url)}`, { cause: err });
    }
  }

  /** Run the script: `op` then its arguments. */
  script(...args: (string | number)[]): Promise<unknown> {
    const r = this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>;
    return this.call(() => r[this.#scriptName]!.call(this.redis, ...args));
  }

  async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new CascadeError('CASCADE_ERR_STORE_UNAVAILABLE', 'store closed');
    try {
      return await fn();
    } catch (err) {
      throw storeError(err);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.redis.disconnect();
  }
}
