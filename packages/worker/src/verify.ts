import { MIN_SECRET_BYTES, verifySignature } from '@authsocket/proxy';
import { type Clock, ConfigError, createTokenVerifier, type JwtOptions, TokenError, type TokenVerifier } from '@authsocket/server';
import { ENTRY_FIELDS, type MessageEnvelope, parseEnvelope } from './entry.js';

export interface VerifyOptions {
  /** The gateway's `--forward-secret` (several during a rotation: the new one and the old one). Required. */
  secret: string | readonly string[];
  /** Oldest entry accepted, by its signature time, in ms; an older one is dead-lettered as `stale`. Default 3_600_000 (an hour). */
  maxAgeMs?: number;
  /**
   * Per-message-auth mode: verify each entry's `identity.token` with the gateway's own JWT settings
   * (`secret`, `publicKey` or `jwksUrl`, `issuer`, `audience`). An entry without a token, with an
   * expired or otherwise invalid one, or one for another user is refused (dead-lettered, not retried).
   */
  jwt?: JwtOptions;
}

export const DEFAULT_MAX_AGE_MS = 3_600_000;

/** Why an entry was refused without running the handler: stable values for logs, metrics and the dead-letter stream. */
export type Refusal =
  | 'malformed'
  | 'signature_missing'
  | 'signature_malformed'
  | 'signature_mismatch'
  | 'stale'
  | 'token_missing'
  | `token_${Exclude<TokenError['reason'], 'keys_unavailable'>}`
  | 'token_user_mismatch';

export type Verified =
  | { readonly ok: true; readonly envelope: MessageEnvelope; readonly claims: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly reason: Refusal };

export class EntryVerifier {
  readonly #secrets: readonly string[];
  readonly #maxAgeMs: number;
  readonly #tokens: TokenVerifier | undefined;
  readonly #clock: Clock;

  constructor(options: VerifyOptions, clock: Clock) {
    if (options === undefined || options === null || typeof options !== 'object') throw new ConfigError('verify', 'expected { secret, maxAgeMs?, jwt? }');
    const secrets = typeof options.secret === 'string' ? [options.secret] : options.secret;
    if (!Array.isArray(secrets) || secrets.length === 0) throw new ConfigError('verify.secret', 'is required');
    for (const secret of secrets) {
      if (typeof secret !== 'string' || Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) {
        throw new ConfigError('verify.secret', `must be at least ${MIN_SECRET_BYTES} bytes`);
      }
    }
    const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    if (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 1) throw new ConfigError('verify.maxAgeMs', `expected a positive integer, got ${String(maxAgeMs)}`);
    this.#secrets = secrets;
    this.#maxAgeMs = maxAgeMs;
    this.#clock = clock;
    try {
      this.#tokens = options.jwt === undefined ? undefined : createTokenVerifier(options.jwt, clock);
    } catch (error) {
      if (error instanceof ConfigError) throw new ConfigError(`verify.${error.option}`, error.message.replace(/^invalid option '[^']*': /, ''));
      throw error;
    }
  }

  async verify(fields: Readonly<Record<string, string>>): Promise<Verified> {
    const body = fields[ENTRY_FIELDS.envelope];
    if (body === undefined) return { ok: false, reason: 'malformed' };
    const signature = verifySignature(this.#secrets, fields[ENTRY_FIELDS.sig], body, { now: this.#clock.now(), toleranceMs: this.#maxAgeMs });
    if (!signature.ok) return { ok: false, reason: signature.reason === 'stale' ? 'stale' : `signature_${signature.reason}` };
    const envelope = parseEnvelope(body);
    if (envelope === undefined) return { ok: false, reason: 'malformed' };
    if (this.#tokens === undefined) return { ok: true, envelope, claims: envelope.identity.claims };
    const { token } = envelope.identity;
    if (token === undefined) return { ok: false, reason: 'token_missing' };
    try {
      const verified = await this.#tokens.verify(token);
      if (verified.user !== envelope.identity.user) return { ok: false, reason: 'token_user_mismatch' };
      return { ok: true, envelope, claims: verified.claims };
    } catch (error) {
      // The JWKS did not answer: not the token's fault, so the entry is retried, not refused.
      if (error instanceof TokenError) return { ok: false, reason: `token_${error.reason}` };
      throw error;
    }
  }
}
