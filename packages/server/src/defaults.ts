// Defaults that more than one module (or package) needs. The options table (options.ts) is where
// each is documented; the Redis engine and the gateway CLI read the same values from here.

/** Ticket lifetime in ms. */
export const DEFAULT_TICKET_TTL_MS = 30_000;

/** Per-stream history kept for resume: entries per stream and their age in ms. */
export const DEFAULT_HISTORY = Object.freeze({ maxEntries: 1_000, maxAgeMs: 300_000 });

/** How long a broker remembers an idempotency key, in ms (24 h). */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 86_400_000;
