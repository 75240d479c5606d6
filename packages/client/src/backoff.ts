export { backoff, type BackoffOptions } from '@authsocket/protocol';

/**
 * How the client waits between attempts. The signal is aborted when the wait is no longer wanted
 * (the client closed, or the browser came back online); an implementation that ignores it is fine,
 * the client re-checks its state when the promise settles.
 */
export type Wait = (ms: number, signal: AbortSignal) => Promise<void>;

/** The default `Wait`: a timer that is cleared as soon as `signal` aborts, so `close()` leaves none. */
export const timerWait: Wait = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
