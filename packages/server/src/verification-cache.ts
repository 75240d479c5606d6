import type { Clock } from './clock.js';
import { ConfigError } from './errors.js';
import type { TokenVerifier, VerifiedToken } from './token-verifier.js';

/** Options of `createCachedVerifier`. */
export interface VerificationCacheOptions {
  /** Most tokens remembered at once; the least recently used is evicted beyond it. Default 10 000. */
  maxEntries?: number;
}

/** How stale an entry's place in the LRU order may get before a hit refreshes it. */
const RECENCY_GRANULARITY_MS = 1_000;

interface Entry {
  readonly expiresAt: number;
  /** When the entry last moved to the most recent end of the order. */
  touchedAt: number;
  /** The settled promise itself, so a hit hands it back without allocating a new one. */
  readonly result: Promise<VerifiedToken>;
  /** The same verification, settled, for the synchronous `peek`. */
  readonly value: VerifiedToken;
}

/** A cached verifier that can also answer synchronously for a token it already verified. */
export interface CachedVerifier extends TokenVerifier {
  /** The verification of `token` when it is cached and unexpired, else undefined; never verifies. */
  peek(token: string): VerifiedToken | undefined;
}

/**
 * Wraps `inner` with a bounded LRU of successful verifications keyed by the token string, for
 * per-message token auth where the same token arrives on every frame. A hit costs one Map lookup
 * and one clock read: no hashing, no new promise; it moves the entry to the recent end of the LRU
 * order at most once a second (a delete and re-insert per frame cost more than the lookup). An entry is served only while
 * `clock.now() < expiresAt`; failures are never remembered; concurrent verifications of one
 * uncached token share a single call to `inner`.
 *
 * Memory: up to `maxEntries` tokens of at most 8192 characters each are kept alive.
 */
export function createCachedVerifier(
  inner: TokenVerifier,
  options: VerificationCacheOptions,
  clock: Clock,
): CachedVerifier {
  const maxEntries = options.maxEntries ?? 10_000;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    // Named after the gateway option that feeds it, which is what a user can fix.
    throw new ConfigError('verificationCacheSize', 'must be a positive integer');
  }
  // Map iteration order is insertion order: deleting and re-setting on a hit makes the first key
  // the least recently used one.
  const entries = new Map<string, Entry>();
  const inFlight = new Map<string, Promise<VerifiedToken>>();

  const remember = (token: string, result: Promise<VerifiedToken>, value: VerifiedToken): void => {
    entries.set(token, { expiresAt: value.expiresAt, touchedAt: clock.now(), result, value });
    if (entries.size > maxEntries) {
      const oldest = entries.keys().next();
      if (oldest.done !== true) entries.delete(oldest.value);
    }
  };

  const verifyUncached = (token: string): Promise<VerifiedToken> => {
    let verifying: Promise<VerifiedToken>;
    try {
      verifying = inner.verify(token);
    } catch (error) {
      // An inner verifier that throws instead of rejecting still yields a rejected promise.
      return Promise.reject(error);
    }
    const shared: Promise<VerifiedToken> = verifying.then(
      (verified) => {
        inFlight.delete(token);
        // A token accepted within the clock tolerance may already be past `exp`: not worth a slot.
        if (clock.now() < verified.expiresAt) remember(token, shared, verified);
        return verified;
      },
      (error: unknown) => {
        inFlight.delete(token);
        throw error;
      },
    );
    inFlight.set(token, shared);
    return shared;
  };

  /** Map order is insertion order: re-inserting makes an entry the most recently used. */
  const touch = (token: string, hit: Entry, now: number): void => {
    if (now - hit.touchedAt < RECENCY_GRANULARITY_MS) return;
    hit.touchedAt = now;
    entries.delete(token);
    entries.set(token, hit);
  };

  return {
    peek(token) {
      const hit = entries.get(token);
      const now = clock.now();
      if (hit === undefined || !(now < hit.expiresAt)) return undefined;
      touch(token, hit, now);
      return hit.value;
    },
    verify(token) {
      const hit = entries.get(token);
      if (hit !== undefined) {
        const now = clock.now();
        if (now < hit.expiresAt) {
          touch(token, hit, now);
          return hit.result;
        }
        entries.delete(token);
        // Expired: dropped, and verified afresh below, which then refuses it as expired.
      }
      return inFlight.get(token) ?? verifyUncached(token);
    },
  };
}
