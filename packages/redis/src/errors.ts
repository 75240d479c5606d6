import { OutcomeUnknownError, StoreUnavailableError } from '@authsocket/server';
import type { Cluster, Redis } from 'ioredis';

/** A connection to one server (standalone, Sentinel-managed) or to a Redis Cluster. */
export type Client = Redis | Cluster;

/** ioredis states in which the connection is known to be down: commands fail at once, never queue. */
const DOWN = new Set(['reconnecting', 'disconnecting', 'close', 'end']);

/** Whether `redis` is known to be down right now. */
export function isDown(redis: Client): boolean {
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
export async function attempt<T>(redis: Client, operation: () => Promise<T>): Promise<T> {
  if (isDown(redis)) throw unavailable(new Error(`redis connection is ${redis.status}`));
  try {
    return await operation();
  } catch (error) {
    throw unavailable(error);
  }
}

/**
 * What a failed publish means for its caller. The broker sends a publish only on a ready
 * connection, where ioredis writes it at once; so Redis answering with an error (READONLY, OOM,
 * NOPERM) means not published: `StoreUnavailableError`, safe to retry. Anything else — no reply
 * within the command timeout, the connection closed or was dropped by the liveness PING before the
 * reply (ioredis then fails sent and unsent commands alike) — means it may have run:
 * `OutcomeUnknownError`.
 */
export function publishFailure(error: unknown): StoreUnavailableError | OutcomeUnknownError {
  if (error instanceof StoreUnavailableError) return error;
  if (error instanceof Error && error.name === 'ReplyError') return unavailable(error);
  return new OutcomeUnknownError({ cause: error });
}
