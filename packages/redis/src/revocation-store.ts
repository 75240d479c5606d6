import type { RevocationStore } from '@authsocket/server';
import { attempt, type Client } from './errors.js';
import type { Keys } from './keys.js';

/**
 * Revocations in Redis, seen by every node: `SET <prefix>r:<user> <revokedAt> PX <ttl>`. A revocation
 * must outlive every credential issued before it, so `ttlMs` must be at least the longest JWT lifetime
 * you accept (tickets live far less). Any failure throws `StoreUnavailableError`.
 */
export class RedisRevocationStore implements RevocationStore {
  readonly #redis: Client;
  readonly #keys: Keys;
  readonly #ttlMs: number;

  constructor(redis: Client, keys: Keys, ttlMs: number) {
    this.#redis = redis;
    this.#keys = keys;
    this.#ttlMs = ttlMs;
  }

  async revoke(user: string, at: number): Promise<void> {
    await attempt(this.#redis, () => this.#redis.set(this.#keys.revoked(user), String(at), 'PX', this.#ttlMs));
  }

  async revokedAt(user: string): Promise<number | undefined> {
    const value = await attempt(this.#redis, () => this.#redis.get(this.#keys.revoked(user)));
    if (value === null) return undefined;
    const at = Number(value);
    // Unreadable: treat the user as revoked now rather than not at all (fail closed).
    return Number.isFinite(at) ? at : Number.MAX_SAFE_INTEGER;
  }
}
