import { backoff } from '@authsocket/protocol';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '@authsocket/server';

/** A Redis connection this package can use: a URL (`redis://`, `rediss://`) or an ioredis client of yours. */
export type RedisSource = string | Redis | Cluster;

export type RedisClient = Redis | Cluster;

/** Reconnects and a worker's failed reads back off from 50 ms to at most 2 s, with full jitter (the protocol's one backoff). */
export function backoffMs(attempt: number): number {
  return backoff(attempt, { minDelayMs: 50, maxDelayMs: 2_000 });
}

/** A client from a URL (owned: closed by us), or the caller's client as it is (not closed by us). */
export function connect(option: string, source: RedisSource, options: RedisOptions): { client: RedisClient; owned: boolean } {
  if (source instanceof Redis || source instanceof Cluster) return { client: source, owned: false };
  if (typeof source !== 'string' || !/^rediss?:\/\//.test(source)) {
    throw new ConfigError(option, 'expected a redis:// or rediss:// URL, or an ioredis client');
  }
  return {
    client: new Redis(source, { retryStrategy: (attempt) => backoffMs(attempt), lazyConnect: false, ...options }),
    owned: true,
  };
}

/** Closes a client we created: QUIT, or a disconnect when Redis is not there to answer it. */
export async function release(client: RedisClient, owned: boolean): Promise<void> {
  if (!owned) return;
  try {
    await Promise.race([client.quit(), new Promise((resolve) => setTimeout(resolve, 500).unref())]);
  } catch {
    // Already gone.
  }
  client.disconnect();
}

/** The Redis engine's EVALSHA-then-EVAL script runner. */
export { Script } from '@authsocket/redis';

export function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(name, `expected a positive integer, got ${String(value)}`);
  }
  return value;
}

export function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(name, 'expected a non-empty string');
  return value;
}
