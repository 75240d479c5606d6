import { StoreUnavailableError } from '@authsocket/server';
import type { Redis } from 'ioredis';

/** ioredis states in which the connection is known to be down: commands fail at once, never queue. */
const DOWN = new Set(['reconnecting', 'close', 'end']);

/** Whether `redis` is known to be down right now. */
export function isDown(redis: Redis): boolean {
  return DOWN.has(redis.status);
}

/** `error` as the `StoreUnavailableError` callers fail closed on. */
export function unavailable(error?: unknown): StoreUnavailableError {
  return error instanceof StoreUnavailableError ? error : new StoreUnavailableError({ cause: error });
}

/**
 * Runs one Redis operation, turning any failure into `StoreUnavailableError`. A connection known to be
 * down fails at once; otherwise the operation is bounded by the connection's command timeout.
 */
export async function attempt<T>(redis: Redis, operation: () => Promise<T>): Promise<T> {
  if (isDown(redis)) throw unavailable(new Error(`redis connection is ${redis.status}`));
  try {
    return await operation();
  } catch (error) {
    throw unavailable(error);
  }
}
