/** Fixed-window counter: at most `limit` hits per `windowMs`. Cheap enough to keep one per connection. */
export interface RateLimit {
  readonly limit: number;
  readonly windowMs: number;
}

export class WindowCounter {
  #windowStart = 0;
  #count = 0;

  /** Counts a hit at `now`; returns 0 when allowed, else the ms until the window reopens. */
  hit(rule: RateLimit, now: number): number {
    if (now - this.#windowStart >= rule.windowMs) {
      this.#windowStart = now;
      this.#count = 0;
    }
    this.#count += 1;
    return this.#count <= rule.limit ? 0 : this.#windowStart + rule.windowMs - now;
  }
}

/** Window counters per key (e.g. remote address), forgotten once their window is over. */
export class KeyedRateLimiter {
  readonly #rule: RateLimit;
  #counters = new Map<string, WindowCounter>();
  #sweptAt = 0;

  constructor(rule: RateLimit) {
    this.#rule = rule;
  }

  /** Counts a hit for `key`; returns 0 when allowed, else the ms to wait. */
  hit(key: string, now: number): number {
    // All counters of a finished window are stale at once: dropping the map bounds memory.
    if (now - this.#sweptAt >= this.#rule.windowMs) {
      this.#counters = new Map();
      this.#sweptAt = now;
    }
    let counter = this.#counters.get(key);
    if (!counter) {
      counter = new WindowCounter();
      this.#counters.set(key, counter);
    }
    return counter.hit(this.#rule, now);
  }
}
