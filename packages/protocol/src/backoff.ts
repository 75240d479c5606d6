/** Bounds of the reconnect delay. */
export interface BackoffOptions {
  /** Smallest delay, and the base that doubles with each attempt. */
  readonly minDelayMs: number;
  /** The cap: no delay is ever longer. */
  readonly maxDelayMs: number;
}

/** Attempts past this double no further; 2 ** 31 times any sane minimum is past any sane cap. */
const MAX_EXPONENT = 31;

/**
 * Delay before reconnect attempt `attempt` (0 for the first retry): full jitter over
 * `[minDelayMs, min(maxDelayMs, minDelayMs * 2 ** (attempt + 1))]`, so clients that lost the same
 * server spread out instead of returning in one wave, from the very first retry. `random` returns a number in `[0, 1)`, as `Math.random`.
 */
export function backoff(attempt: number, { minDelayMs, maxDelayMs }: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)) + 1, MAX_EXPONENT);
  const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** exponent);
  const jitter = Math.min(Math.max(random(), 0), 1);
  return Math.min(ceiling, Math.floor(minDelayMs + jitter * (ceiling - minDelayMs)));
}
