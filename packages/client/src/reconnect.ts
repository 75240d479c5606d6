import type { CloseAction } from '@authsocket/protocol';
import { backoff, type Wait } from './backoff.js';

export interface ReconnectOptions {
  readonly minReconnectDelayMs: number;
  readonly maxReconnectDelayMs: number;
  readonly maxReconnectAttempts: number;
  readonly reconnectOnBrowserEvents: boolean;
  readonly wait: Wait;
  readonly random: () => number;
}

/** What follows a close: stop in a state, or try again after a delay (`backoff`: the policy's). */
export type NextStep = { readonly stop: 'closed' | 'unauthenticated' } | { readonly retryIn: number | 'backoff' };

/**
 * The close table applied: `stop` stops; `backoff` backs off; `retry-after` waits the server's hint
 * (backoff without one); `refresh-*` reconnects at once when `refresh()` grants fresh credentials, and
 * ends `unauthenticated` when it does not.
 */
export function nextStep(action: CloseAction, retryAfterMs: number | undefined, refresh: () => boolean): NextStep {
  switch (action) {
    case 'stop':
      return { stop: 'closed' };
    case 'backoff':
      return { retryIn: 'backoff' };
    case 'retry-after':
      return { retryIn: retryAfterMs ?? 'backoff' };
    case 'refresh-once':
    case 'refresh-now':
      return refresh() ? { retryIn: 0 } : { stop: 'unauthenticated' };
  }
}

/**
 * Waits `ms` through `wait`, ending early when any of `signals` aborts. The signal `wait` gets is
 * aborted once the wait is over either way, so a timer-based `wait` leaves no timer behind.
 */
export async function sleep(wait: Wait, ms: number, ...signals: AbortSignal[]): Promise<void> {
  const controller = new AbortController();
  const over = controller.signal;
  for (const signal of signals) {
    if (signal.aborted) controller.abort();
    else signal.addEventListener('abort', () => controller.abort(), { once: true, signal: over });
  }
  const aborted = new Promise<void>((resolve) => {
    if (over.aborted) resolve();
    else over.addEventListener('abort', () => resolve(), { once: true });
  });
  try {
    await Promise.race([wait(ms, over).catch(() => undefined), aborted]);
  } finally {
    controller.abort();
  }
}

/**
 * The reconnect policy: counts consecutive failed attempts (reset by every `auth_ok`), gives the
 * backoff delay of each, waits between them, and in browsers cuts a wait short on `online` or when
 * the page becomes visible.
 */
export class Reconnect {
  readonly #options: ReconnectOptions;
  #failures = 0;
  #wake = new AbortController();
  #removeBrowserListeners: (() => void) | undefined;

  constructor(options: ReconnectOptions) {
    this.#options = options;
  }

  /** Consecutive attempts that failed since the last `auth_ok`. */
  get failures(): number {
    return this.#failures;
  }

  reset(): void {
    this.#failures = 0;
  }

  /** Counts one more failed attempt and returns the wait before the next; undefined once attempts are used up. */
  next(delay: number | 'backoff'): number | undefined {
    if (this.#failures >= this.#options.maxReconnectAttempts) return undefined;
    const ms = delay === 'backoff' ? this.delay(this.#failures) : delay;
    this.#failures++;
    return ms;
  }

  /** The backoff delay before retry `retry` (0 for the first). */
  delay(retry: number): number {
    const { minReconnectDelayMs: minDelayMs, maxReconnectDelayMs: maxDelayMs, random } = this.#options;
    return backoff(retry, { minDelayMs, maxDelayMs }, random);
  }

  /** Waits `ms` with the injected `wait`; ends early when `signal` aborts or on `wake()`. */
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return sleep(this.#options.wait, ms, signal, this.#wake.signal);
  }

  /** Ends every wait under way now. */
  wake(): void {
    this.#wake.abort();
    this.#wake = new AbortController();
  }

  /** In browsers: `online`, or the page becoming visible, calls `wake()` when `shouldWake()` says so. */
  listenToBrowser(shouldWake: () => boolean): void {
    if (this.#removeBrowserListeners || !this.#options.reconnectOnBrowserEvents) return;
    const scope = globalThis as Partial<Pick<Window, 'addEventListener' | 'removeEventListener' | 'document'>>;
    if (typeof scope.addEventListener !== 'function' || typeof scope.removeEventListener !== 'function') return;
    const doc = scope.document;
    const onOnline = (): void => {
      if (shouldWake()) this.wake();
    };
    const onVisibility = (): void => {
      if (doc?.visibilityState === 'visible') onOnline();
    };
    scope.addEventListener('online', onOnline);
    doc?.addEventListener('visibilitychange', onVisibility);
    this.#removeBrowserListeners = () => {
      scope.removeEventListener?.('online', onOnline);
      doc?.removeEventListener('visibilitychange', onVisibility);
    };
  }

  stopListening(): void {
    this.#removeBrowserListeners?.();
    this.#removeBrowserListeners = undefined;
  }
}
