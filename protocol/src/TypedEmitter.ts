/**
 * A small typed event emitter that runs in Node and in browsers (no `events` polyfill).
 * `E` maps each event name to its argument tuple.
 *
 * `safeEmit()` never throws: a listener that throws is reported through `listenererror`
 * (or, failing that, the console) and the other listeners still run, so one faulty
 * subscriber cannot break the object emitting.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventMap = Record<string, any[]>;
type Listener<A extends unknown[]> = (...args: A) => void;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void;

export class TypedEmitter<E extends EventMap> {
  #listeners = new Map<keyof E, AnyListener[]>();

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener as AnyListener);
    this.#listeners.set(event, list);
    return this;
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const list = this.#listeners.get(event);
    if (!list) return this;
    const i = list.findIndex((l) => l === listener || (l as { inner?: unknown }).inner === listener);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#listeners.delete(event);
    return this;
  }

  once<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const wrapper = ((...args: E[K]) => {
      this.off(event, wrapper);
      listener(...args);
    }) as Listener<E[K]> & { inner?: unknown };
    wrapper.inner = listener;
    return this.on(event, wrapper);
  }

  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  removeAllListeners(event?: keyof E): this {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
    return this;
  }

  /** Emit; listener exceptions propagate. Prefer safeEmit() for anything user-facing. */
  emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const l of [...list]) (l as AnyListener)(...args);
    return true;
  }

  /** Emit, isolating listener failures. Returns whether anyone listened. */
  safeEmit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const l of [...list]) {
      try {
        (l as AnyListener)(...args);
      } catch (err) {
        if (event !== 'listenererror' && this.listenerCount('listenererror') > 0) {
          this.emit('listenererror' as K, ...([event, err] as unknown as E[K]));
        } else {
          console.error(`listener for "${String(event)}" threw`, err);
        }
      }
    }
    return true;
  }
}

/** Resolve with the arguments of the next `event`, or reject on `rejectOn` / timeout. */
export function onceEvent<E extends EventMap, K extends keyof E>(
  emitter: TypedEmitter<E>,
  event: K,
  options: { timeoutMs?: number; rejectOn?: keyof E; filter?: (...args: E[K]) => boolean } = {},
): Promise<E[K]> {
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      emitter.off(event, onEvent);
      if (options.rejectOn) emitter.off(options.rejectOn, onReject);
      if (timer) clearTimeout(timer);
    };
    const onEvent = (...args: E[K]) => {
      if (options.filter && !options.filter(...args)) return;
      done();
      resolve(args);
    };
    const onReject = (...args: unknown[]) => {
      done();
      reject(args[0] instanceof Error ? args[0] : new Error(`${String(options.rejectOn)} before ${String(event)}`));
    };
    emitter.on(event, onEvent);
    if (options.rejectOn) emitter.on(options.rejectOn, onReject as never);
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${String(event)}`));
      }, options.timeoutMs);
    }
  });
}
