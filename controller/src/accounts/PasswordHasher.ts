import { hash, verify } from '@node-rs/argon2';
import { CascadeError } from '@cascade/protocol';

/** Hashes and checks passwords (injected so that unit tests need not spend argon2's time). */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
}

/**
 * argon2id with the library's defaults (19 MiB, 2 passes: OWASP's minimum), computed on libuv's
 * thread pool so the event loop keeps serving. At most `concurrency` hashes run at once and
 * 8 × as many wait; beyond that a flood of sign-ins is refused with CASCADE_ERR_ACCOUNT_BUSY
 * instead of queueing without bound (memory) or starving the media threads (CPU).
 */
export class Argon2Hasher implements PasswordHasher {
  readonly #concurrency: number;
  readonly #maxWaiting: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(concurrency = 2) {
    this.#concurrency = Math.max(1, concurrency);
    this.#maxWaiting = 8 * this.#concurrency;
  }

  hash(password: string): Promise<string> {
    return this.#limited(() => hash(password));
  }

  verify(hashed: string, password: string): Promise<boolean> {
    return this.#limited(() => verify(hashed, password).catch(() => false));
  }

  async #limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#maxWaiting) throw new CascadeError('CASCADE_ERR_ACCOUNT_BUSY');
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter (the running count stays), or free it.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
