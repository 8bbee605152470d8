/**
 * A small sorted set (member → score, ascending iteration), the in-process twin of a Redis
 * ZSET so that both stores keep the same indexes. Ties are broken by member name, as in Redis.
 */
export class SortedSet {
  readonly #scores = new Map<string, number>();
  #order: string[] = [];
  /** Bumped on every change, so that iterators notice. */
  #version = 0;

  get size(): number {
    return this.#scores.size;
  }

  score(member: string): number | undefined {
    return this.#scores.get(member);
  }

  set(member: string, score: number): void {
    const old = this.#scores.get(member);
    if (old === score) return;
    this.#version++;
    if (old !== undefined) {
      const i = this.#indexOf(member, old);
      // Most updates (one more viewer) leave the member where it is: no need to move the array.
      const prev = this.#order[i - 1];
      const next = this.#order[i + 1];
      if (
        (prev === undefined || this.#cmp(prev, this.#scores.get(prev)!, member, score) < 0) &&
        (next === undefined || this.#cmp(member, score, next, this.#scores.get(next)!) < 0)
      ) {
        this.#scores.set(member, score);
        return;
      }
      this.#order.splice(i, 1);
    }
    this.#scores.set(member, score);
    this.#order.splice(this.#insertionPoint(member, score), 0, member);
  }

  delete(member: string): boolean {
    const old = this.#scores.get(member);
    if (old === undefined) return false;
    this.#version++;
    this.#order.splice(this.#indexOf(member, old), 1);
    this.#scores.delete(member);
    return true;
  }

  /**
   * Members in ascending order, lazily (placement usually stops at the first few, so no copy
   * of the whole set is made). Callers may change the set while iterating: iteration then
   * resumes after the last member yielded, by the order it had when yielded, so a member
   * whose score rose past it may be seen again.
   */
  *ascending(): Generator<[string, number]> {
    let i = 0;
    let version = this.#version;
    while (i < this.#order.length) {
      const m = this.#order[i]!;
      const s = this.#scores.get(m)!;
      yield [m, s];
      if (version !== this.#version) {
        version = this.#version;
        i = this.#upperBound(m, s);
      } else {
        i++;
      }
    }
  }

  /** First member (lowest score) without copying. */
  first(): [string, number] | undefined {
    const m = this.#order[0];
    return m === undefined ? undefined : [m, this.#scores.get(m)!];
  }

  #cmp(aM: string, aS: number, bM: string, bS: number): number {
    return aS !== bS ? aS - bS : aM < bM ? -1 : aM > bM ? 1 : 0;
  }

  /** Index of the first member ordered after (member, score). */
  #upperBound(member: string, score: number): number {
    let lo = 0;
    let hi = this.#order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.#order[mid]!;
      if (this.#cmp(m, this.#scores.get(m)!, member, score) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #insertionPoint(member: string, score: number): number {
    let lo = 0;
    let hi = this.#order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.#order[mid]!;
      if (this.#cmp(m, this.#scores.get(m)!, member, score) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #indexOf(member: string, score: number): number {
    // The member is still in #order with its old score, which #scores may no longer hold.
    const saved = this.#scores.get(member);
    this.#scores.set(member, score);
    const i = this.#insertionPoint(member, score);
    if (saved !== undefined) this.#scores.set(member, saved);
    return i;
  }
}
