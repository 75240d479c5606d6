import { AuthSocketError, StoreUnavailableError, TokenError } from './errors.js';
import type { RevocationStore } from './stores.js';
import type { TokenVerifier, VerifiedToken } from './token-verifier.js';

/** The user was revoked after this credential was issued. */
export class RevokedError extends AuthSocketError {
  constructor() {
    super('ERR_REVOKED', 'revoked');
  }
}

/**
 * Token verification plus the revocation check, the two questions every entry point asks
 * (ticket endpoint, handshake token, `auth`, reauth, per-message token).
 */
export class IdentityVerifier {
  readonly #verifier: TokenVerifier;
  readonly #revocations: RevocationStore;
  readonly #now: () => number;

  constructor(verifier: TokenVerifier, revocations: RevocationStore, now: () => number) {
    this.#verifier = verifier;
    this.#revocations = revocations;
    this.#now = now;
  }

  /** Throws `TokenError`, `RevokedError` or `StoreUnavailableError`. */
  async verify(token: string): Promise<VerifiedToken> {
    const verified = await this.#verifier.verify(token);
    if (this.isCurrentNow(verified) !== true) await this.assertCurrent(verified);
    return verified;
  }

  /**
   * The checks after the signature, shared by every entry point (per-message tokens come from a
   * cache of signature checks): not expired, not revoked.
   */
  async assertCurrent(verified: VerifiedToken): Promise<void> {
    // jose accepts a token up to its clock tolerance past `exp`; a connection must not start expired.
    if (verified.expiresAt <= this.#now()) throw new TokenError('expired');
    const iat = issuedAt(verified);
    await this.assertNotRevoked(verified.user, iat);
  }

  /**
   * `assertCurrent` without a promise, when the revocation store answers synchronously: true when
   * current; false or undefined mean "take the asynchronous path" (which refuses precisely).
   */
  isCurrentNow(verified: VerifiedToken): boolean | undefined {
    const revokedAtNow = this.#revocations.revokedAtNow;
    if (revokedAtNow === undefined || verified.expiresAt <= this.#now()) return undefined;
    const revokedAt = revokedAtNow.call(this.#revocations, verified.user);
    const iat = issuedAt(verified);
    return revokedAt === undefined || iat > revokedAt;
  }

  /** Throws `RevokedError` if `user` was revoked at or after `issuedAt` (ms). */
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
function issuedAt(verified: VerifiedToken): number {
  return typeof verified.claims.iat === 'number' ? verified.claims.iat * 1000 : 0;
}
