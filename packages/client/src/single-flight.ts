/**
 * Wraps an async function so that concurrent callers share one call: while a call is in flight every
 * caller gets its promise; once it settles, the next caller starts a new one. Used for `getToken()`
 * and `getTicket()`, so a `reauth_required` arriving during a reconnect does not fetch twice.
 */
export function singleFlight<T>(fn: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    if (inFlight) return inFlight;
    const call = (async () => {
      try {
        return await fn();
      } finally {
        inFlight = undefined;
      }
    })();
    inFlight = call;
    return call;
  };
}
