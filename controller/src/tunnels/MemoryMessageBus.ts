import { randomBytes } from 'node:crypto';
import { CONTROLLER_ENDPOINT_PREFIX, type BusMessage, type MessageBus } from './MessageBus.js';

/**
 * Instances that share one process (several controller instances in a unit test): the
 * in-process equivalent of Redis pub/sub.
 */
export class MemoryBusHub {
  readonly instances = new Map<string, MemoryMessageBus>();
  readonly routes = new Map<string, { instance: string; until: number }>();
}

/** The bus of a single-machine deployment: every endpoint is held by this process. */
export class MemoryMessageBus implements MessageBus {
  readonly kind = 'memory' as const;
  readonly instanceId: string;
  readonly #hub: MemoryBusHub;
  readonly #handlers: ((msg: BusMessage) => void)[] = [];
  readonly #now: () => number;
  #closed = false;

  constructor(options: { instanceId?: string; hub?: MemoryBusHub; now?: () => number } = {}) {
    this.instanceId = options.instanceId ?? randomBytes(6).toString('hex');
    this.#hub = options.hub ?? new MemoryBusHub();
    this.#now = options.now ?? Date.now;
    this.#hub.instances.set(this.instanceId, this);
  }

  async send(msg: BusMessage): Promise<boolean> {
    const target = this.#holder(msg.to);
    if (!target) return false;
    // Asynchronous like a socket, in order (microtasks run first in, first out).
    queueMicrotask(() => target.#dispatch(msg));
    return true;
  }

  onMessage(handler: (msg: BusMessage) => void): void {
    this.#handlers.push(handler);
  }

  async hold(endpoint: string, ttlMs: number): Promise<void> {
    this.#hub.routes.set(endpoint, { instance: this.instanceId, until: this.#now() + ttlMs });
  }

  async release(endpoint: string): Promise<void> {
    if (this.#hub.routes.get(endpoint)?.instance === this.instanceId) this.#hub.routes.delete(endpoint);
  }

  async held(endpoint: string): Promise<boolean> {
    return !!this.#holder(endpoint);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#hub.instances.delete(this.instanceId);
    for (const [k, r] of this.#hub.routes) if (r.instance === this.instanceId) this.#hub.routes.delete(k);
  }

  #holder(endpoint: string): MemoryMessageBus | undefined {
    if (endpoint.startsWith(CONTROLLER_ENDPOINT_PREFIX)) return this.#hub.instances.get(endpoint.slice(CONTROLLER_ENDPOINT_PREFIX.length));
    const r = this.#hub.routes.get(endpoint);
    if (!r || r.until < this.#now()) return undefined;
    return this.#hub.instances.get(r.instance);
  }

  #dispatch(msg: BusMessage): void {
    if (this.#closed) return;
    for (const h of this.#handlers) h(msg);
  }
}
