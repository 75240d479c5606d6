/**
 * A circuit breaker for one endpoint. Closed: every request goes. After `failures` consecutive
 * failures it opens: requests fail at once for `cooldownMs`, so a down backend costs no timeouts
 * and gets no load while it recovers. Then half-open: one request goes; its success closes the
 * breaker, its failure opens it for another cooldown.
 */
export class Breaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  #failures = 0;
  #openUntil = 0;
  #trial = false;

  constructor(failures: number, cooldownMs: number) {
    this.#threshold = failures;
    this.#cooldownMs = cooldownMs;
  }

  /** Whether a request may go at `now`. True in half-open state means: this one is the trial. */
  allow(now: number): boolean {
    if (this.#failures < this.#threshold) return true;
    if (now < this.#openUntil || this.#trial) return false;
    this.#trial = true;
    return true;
  }

  succeeded(): void {
    this.#failures = 0;
    this.#trial = false;
  }

  /** Counts a failure; true when it is the one that opened the breaker (to log once, not per request). */
  failed(now: number): boolean {
    const wasClosed = this.#failures < this.#threshold;
    this.#failures += 1;
    this.#trial = false;
    if (this.#failures < this.#threshold) return false;
    this.#openUntil = now + this.#cooldownMs;
    return wasClosed;
  }
}
