import { createHash } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '@authsocket/server';

/** A Redis connection this package can use: a URL (`redis://`, `rediss://`) or an ioredis client of yours. */
export type RedisSource = string | Redis | Cluster;

export type RedisClient = Redis | Cluster;

/** Capped exponential backoff for reconnects and for a worker's failed reads: 50 ms doubling, at most 2 s. */
export function backoffMs(attempt: number): number {
  return Math.min(2_000, 50 * 2 ** Math.min(attempt, 10));
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

/** A Lua script by EVALSHA, falling back to EVAL when Redis does not have it (restart, `SCRIPT FLUSH`). */
export class Script {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}

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
