import { RevokedError, StoreUnavailableError, TokenError } from './errors.js';
import type { RevocationStore } from './stores.js';
import type { TokenVerifier, VerifiedToken } from './token-verifier.js';

export { RevokedError };

/**
 * Token verification plus the revocation check, the two questions every entry point asks
 * (ticket endpoint, handshake token, `auth`, reauth, per-message token).
 */
export class IdentityVerifier {
  readonly #verifier: TokenVerifier;
  readonly #revocations: RevocationStore;
  readonly #now: () => number;
  readonly #skewMs: number;
  readonly #subscriptionClaim: string | false;

  /**
   * `skewMs`: how far the IdP's clock (a token's `iat`, whole seconds) may be ahead of this node's
   * (a revocation's time): a token counts as issued after a revocation only when its `iat` is more
   * than `skewMs` after it. So a token issued just before a revocation is refused even with the
   * IdP's clock ahead, and a login within `skewMs` after a revocation is refused too (fail closed).
   * `subscriptionClaim`: the claim that makes a token a subscription token (`false`: none).
   */
  constructor(verifier: TokenVerifier, revocations: RevocationStore, now: () => number, skewMs: number, subscriptionClaim: string | false = false) {
    this.#verifier = verifier;
    this.#revocations = revocations;
    this.#now = now;
    this.#skewMs = skewMs;
    this.#subscriptionClaim = subscriptionClaim;
  }

  /**
   * Throws `TokenError`, `RevokedError` or `StoreUnavailableError`. `purpose`: a subscription token
   * is accepted only where one is asked for.
   */
  async verify(token: string, purpose: 'connection' | 'subscription' = 'connection'): Promise<VerifiedToken> {
    const verified = await this.#verifier.verify(token);
    if (purpose === 'connection') this.assertConnectionToken(verified);
    if (this.isCurrentNow(verified) !== true) await this.assertCurrent(verified);
    return verified;
  }

  /**
   * A subscription token grants one topic, never a connection: signed with the same keys, it would
   * otherwise log its holder in (Centrifugo refuses a connection JWT with a `channel` claim alike).
   */
  assertConnectionToken(verified: VerifiedToken): void {
    if (!this.isConnectionToken(verified)) throw new TokenError('subscription_token');
  }

  isConnectionToken(verified: VerifiedToken): boolean {
    return this.#subscriptionClaim === false || verified.claims[this.#subscriptionClaim] === undefined;
  }

  /**
   * The checks after the signature, shared by every entry point (per-message tokens come from a
   * cache of signature checks): not expired, not revoked.
   */
  async assertCurrent(verified: VerifiedToken): Promise<void> {
    // jose accepts a token up to its clock tolerance past `exp`; a connection must not start expired.
    if (verified.expiresAt <= this.#now()) throw new TokenError('expired');
    await this.assertNotRevoked(verified.user, tokenIssuedAt(verified.claims) - this.#skewMs);
  }

  /**
   * `assertCurrent` without a promise, when the revocation store answers synchronously: true when
   * current; false or undefined mean "take the asynchronous path" (which refuses precisely).
   */
  isCurrentNow(verified: VerifiedToken): boolean | undefined {
    const revokedAtNow = this.#revocations.revokedAtNow;
    if (revokedAtNow === undefined || verified.expiresAt <= this.#now()) return undefined;
    const revokedAt = revokedAtNow.call(this.#revocations, verified.user);
    return revokedAt === undefined || !this.coveredByRevocation(verified.claims, revokedAt);
  }

  /** Whether a token with these claims was issued before (or too near) a revocation at `revokedAt`. */
  coveredByRevocation(claims: { readonly iat?: number }, revokedAt: number): boolean {
    return tokenIssuedAt(claims) - this.#skewMs <= revokedAt;
  }

  /**
   * Throws `RevokedError` if `user` was revoked at or after `issuedAt` (ms, this node's clock: a
   * ticket's issue time; tokens pass their `iat` less the skew).
   */
  async assertNotRevoked(user: string, issuedAt: number): Promise<void> {
    let revokedAt: number | undefined;
    try {
      revokedAt = await this.#revocations.revokedAt(user);
    } catch (error) {
      throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError({ cause: error });
    }
    if (revokedAt !== undefined && issuedAt <= revokedAt) throw new RevokedError();
  }
}

/** The token's `iat` in ms, or 0 without one (then any revocation refuses it). */
function tokenIssuedAt(claims: { readonly iat?: number }): number {
  return typeof claims.iat === 'number' ? claims.iat * 1000 : 0;
}
