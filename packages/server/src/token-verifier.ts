import { createPublicKey, type KeyObject, webcrypto } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import type { CryptoKey, JWTPayload, JWTVerifyOptions, JWTVerifyResult } from 'jose';
import { LIMITS } from '@authsocket/protocol';
import type { Clock } from './clock.js';
import { ConfigError, KeysUnavailableError, TokenError, type TokenFailureReason } from './errors.js';
import { type JwksStatus, jwksSettings, RemoteKeySet } from './jwks.js';
import type { Logger } from './logger.js';

/** How bearer JWTs are verified. Exactly one key source: `secret`, `publicKey` or `jwksUrl`. */
export interface JwtOptions {
  /** HMAC secret (HS256/384/512), at least 32 bytes. */
  secret?: string | Uint8Array;
  /** PEM SPKI public key (`-----BEGIN PUBLIC KEY-----`) for RS*, PS*, ES* or EdDSA. */
  publicKey?: string;
  /**
   * Remote JWKS URL (http or https), fetched and cached (see the `jwks*` options). An unreachable
   * endpoint refuses tokens as `KeysUnavailableError` (503 / `1011`), never as invalid.
   */
  jwksUrl?: string;
  /** With `jwksUrl`: how long a fetched set is used before it is fetched again. Default 10 min. */
  jwksCacheMaxAgeMs?: number;
  /** With `jwksUrl`: least time between fetches; an unknown `kid` waits at most this for a refetch. Default 1 s. */
  jwksCooldownMs?: number;
  /** With `jwksUrl`: how long one fetch may take. Default 5 s. */
  jwksTimeoutMs?: number;
  /** With `jwksUrl`: how long past their max age cached keys serve while fetches fail. Default 1 h. */
  jwksStaleIfErrorMs?: number;
  /**
   * Allowed `alg` values. Default: `['HS256']` with `secret`; otherwise those of
   * `['RS256', 'ES256', 'PS256', 'EdDSA']` that fit the key. Never `none`; HS* only with `secret`
   * and never with keys, so an RSA public key can never be abused as an HMAC secret.
   */
  algorithms?: string[];
  /** Required `iss`. */
  issuer?: string;
  /** Required `aud` (one of, when the token carries several). */
  audience?: string;
  /** Leeway for `exp` and `nbf`, in seconds. Default 5. */
  clockToleranceSec?: number;
  /** Claim holding the user id, default `sub`; it must be a non-empty string. */
  userClaim?: string;
}

/** A token that passed verification. */
export interface VerifiedToken {
  readonly user: string;
  /** From `exp`, in ms since the epoch. May already be past when accepted within the tolerance. */
  readonly expiresAt: number;
  readonly claims: JWTPayload;
}

/**
 * Verifies bearer JWTs; rejects with `TokenError`, or `KeysUnavailableError` when the keys a JWKS
 * verifier needs cannot be fetched (an outage, not a bad token).
 */
export interface TokenVerifier {
  verify(token: string): Promise<VerifiedToken>;
  /** With `jwksUrl`: whether the key set is being fetched fine, served stale, or unusable. */
  readonly keysStatus?: () => JwksStatus;
}

const HMAC_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512'];
const DEFAULT_KEY_ALGORITHMS: readonly string[] = ['RS256', 'ES256', 'PS256', 'EdDSA'];

/** `jwt.algorithms` when omitted: with a secret, and (those that fit the key) with a public key or a JWKS. */
export const DEFAULT_JWT_ALGORITHMS = Object.freeze({ secret: ['HS256'] as readonly string[], key: DEFAULT_KEY_ALGORITHMS });

/** `jwt.userClaim` when omitted. */
export const DEFAULT_USER_CLAIM = 'sub';
const RSA_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const KEY_ALGORITHMS: readonly string[] = [...RSA_ALGORITHMS, 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
/** OpenSSL curve names as Node reports them, to the one ES* algorithm each curve is used with. */
const EC_CURVE_ALGORITHMS: ReadonlyMap<string, string> = new Map([
  ['prime256v1', 'ES256'],
  ['secp384r1', 'ES384'],
  ['secp521r1', 'ES512'],
]);
const MIN_SECRET_BYTES = 32;
const MIN_RSA_BITS = 2048;
const PEM_SPKI = /^\s*-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/;

/** Seconds of clock difference allowed between the IdP and this node (`jwt.clockToleranceSec`). */
export const DEFAULT_CLOCK_TOLERANCE_SEC = 5;

/**
 * Builds a verifier. Options are checked here, eagerly, so a misconfigured gateway fails at start
 * with a `ConfigError` naming the option rather than refusing every token later.
 */
export function createTokenVerifier(options: JwtOptions, clock: Clock, logger?: Logger): TokenVerifier {
  const verifyJws = keyedVerify(options, clock, logger);
  const userClaim = options.userClaim ?? DEFAULT_USER_CLAIM;
  if (typeof userClaim !== 'string' || userClaim === '') throw new ConfigError('jwt.userClaim', 'must be a non-empty string');
  const tolerance = options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC;
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
    throw new ConfigError('jwt.clockToleranceSec', 'must be a finite number of seconds >= 0');
  }
  const checks: JWTVerifyOptions = { algorithms: verifyJws.algorithms, clockTolerance: tolerance, requiredClaims: ['exp'] };
  if (options.issuer !== undefined) checks.issuer = nonEmpty('jwt.issuer', options.issuer);
  if (options.audience !== undefined) checks.audience = nonEmpty('jwt.audience', options.audience);

  return {
    ...(verifyJws.status === undefined ? {} : { keysStatus: verifyJws.status }),
    async verify(token) {
      // Length first: an oversized token is refused before any base64 or JSON work is spent on it.
      if (typeof token !== 'string' || token.length === 0 || token.length > LIMITS.tokenLength) {
        throw new TokenError('malformed');
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await verifyJws.verify(token, { ...checks, currentDate: new Date(clock.now()) }));
      } catch (error) {
        throw toTokenError(error);
      }
      const user = payload[userClaim];
      if (typeof user !== 'string' || user === '' || typeof payload.exp !== 'number') throw new TokenError('claims');
      return { user, expiresAt: payload.exp * 1000, claims: payload };
    },
  };
}

/** jose's verify bound to one key source, and the algorithms allowed with it. */
interface VerifyJws {
  readonly algorithms: string[];
  verify(token: string, options: JWTVerifyOptions): Promise<JWTVerifyResult>;
  readonly status?: () => JwksStatus;
}

const JWKS_ONLY = ['jwksCacheMaxAgeMs', 'jwksCooldownMs', 'jwksTimeoutMs', 'jwksStaleIfErrorMs'] as const;

/** Validates the key source and its algorithms, and returns jose's verify bound to that key. */
function keyedVerify(options: JwtOptions, clock: Clock, logger: Logger | undefined): VerifyJws {
  const sources = [options.secret, options.publicKey, options.jwksUrl].filter((source) => source !== undefined);
  if (sources.length !== 1) throw new ConfigError('jwt', 'set exactly one of secret, publicKey, jwksUrl');
  if (options.jwksUrl === undefined) {
    const stray = JWKS_ONLY.find((name) => options[name] !== undefined);
    if (stray !== undefined) throw new ConfigError(`jwt.${stray}`, 'applies only with jwksUrl');
  }

  if (options.secret !== undefined) {
    const secret = secretBytes(options.secret);
    const algorithms = allowedAlgorithms(options.algorithms, DEFAULT_JWT_ALGORITHMS.secret, HMAC_ALGORITHMS, 'a secret');
    return { algorithms, verify: hmacVerify(secret, algorithms) };
  }
  if (options.publicKey !== undefined) {
    const key = publicKeyObject(options.publicKey);
    const fits = algorithmsForKey(key);
    const defaults = DEFAULT_KEY_ALGORITHMS.filter((alg) => fits.includes(alg));
    if (defaults.length === 0 && options.algorithms === undefined) {
      throw new ConfigError('jwt.algorithms', `no default algorithm fits this ${describeKey(key)} key; set it, e.g. ['${fits.join("', '")}']`);
    }
    const algorithms = allowedAlgorithms(options.algorithms, defaults, fits, `this ${describeKey(key)} key`);
    // jose caches the CryptoKey it derives from a public KeyObject, per algorithm.
    return { algorithms, verify: (token, checks) => jwtVerify(token, key, checks) };
  }
  const keySet = remoteKeys(options, clock, logger);
  const algorithms = allowedAlgorithms(options.algorithms, DEFAULT_KEY_ALGORITHMS, KEY_ALGORITHMS, 'a JWKS');
  return { algorithms, verify: (token, checks) => verifyWithSet(token, keySet, checks), status: () => keySet.status };
}

/**
 * A token without a `kid` may match several keys of the set: jose then hands them over through the
 * error, to be tried in turn (any that verifies wins; else a signature failure).
 */
async function verifyWithSet(token: string, keySet: RemoteKeySet, checks: JWTVerifyOptions): Promise<JWTVerifyResult> {
  try {
    return await jwtVerify(token, keySet.getKey, checks);
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    for await (const key of error) {
      try {
        return await jwtVerify(token, key, checks);
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/**
 * Given the secret's bytes, jose imports a fresh CryptoKey on every verification (a third of an
 * HS256 check's CPU); the secret is imported once here instead, per allowed algorithm, since an
 * HMAC CryptoKey is bound to one hash.
 */
function hmacVerify(secret: Uint8Array, algorithms: readonly string[]): VerifyJws['verify'] {
  const importing = Promise.all(
    algorithms.map((alg) =>
      webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify']),
    ),
  );
  let keys: CryptoKey[] | undefined;
  // A failed import surfaces on the first verification, through `await importing`.
  importing.then((imported) => (keys = imported), () => undefined);
  // jose checks `alg` against the allowlist before asking for the key, so the lookup always finds one.
  const keyFor = (header: { alg?: string }) => (keys as CryptoKey[])[algorithms.indexOf(header.alg as string)] as CryptoKey;
  const verifyWith = (imported: CryptoKey[], token: string, checks: JWTVerifyOptions) =>
    imported.length === 1 ? jwtVerify(token, imported[0] as CryptoKey, checks) : jwtVerify(token, keyFor, checks);
  // Not `async`: once imported, jose's own promise is handed back without another layer.
  return (token, checks) => (keys ? verifyWith(keys, token, checks) : importing.then((imported) => verifyWith(imported, token, checks)));
}

function secretBytes(secret: unknown): Uint8Array {
  const bytes = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  if (!(bytes instanceof Uint8Array)) throw new ConfigError('jwt.secret', 'must be a string or a Uint8Array');
  if (bytes.byteLength < MIN_SECRET_BYTES) {
    throw new ConfigError('jwt.secret', `must be at least ${MIN_SECRET_BYTES} bytes, got ${bytes.byteLength}`);
  }
  // A copy, so the caller mutating its buffer later cannot change the key under us.
  return Uint8Array.from(bytes);
}

/**
 * Parses the PEM synchronously with node:crypto rather than jose's async `importSPKI`: the key is
 * then fully checked at start (not on the first token), and one KeyObject serves every algorithm
 * that fits it, where `importSPKI` binds a key to a single algorithm.
 */
function publicKeyObject(pem: unknown): KeyObject {
  if (typeof pem !== 'string' || !PEM_SPKI.test(pem)) {
    throw new ConfigError('jwt.publicKey', "must be a PEM SPKI public key ('-----BEGIN PUBLIC KEY-----')");
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem', type: 'spki' });
  } catch {
    throw new ConfigError('jwt.publicKey', 'is not a readable PEM SPKI public key');
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === 'rsa' && (bits === undefined || bits < MIN_RSA_BITS)) {
    throw new ConfigError('jwt.publicKey', `RSA keys must be at least ${MIN_RSA_BITS} bits`);
  }
  if (algorithmsForKey(key).length === 0) {
    throw new ConfigError('jwt.publicKey', `unsupported key type ${describeKey(key)}`);
  }
  return key;
}

function algorithmsForKey(key: KeyObject): readonly string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return RSA_ALGORITHMS;
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const alg = curve === undefined ? undefined : EC_CURVE_ALGORITHMS.get(curve);
      return alg === undefined ? [] : [alg];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      // rsa-pss (jose cannot use it as a KeyObject on Node 20), ed448, x25519, dsa...: refused.
      return [];
  }
}

function describeKey(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve === undefined ? String(key.asymmetricKeyType) : `${String(key.asymmetricKeyType)} ${curve}`;
}

/**
 * The allowlist handed to jose, which refuses any other `alg` before touching a key: this is what
 * stops `none` and HS/RS confusion.
 */
function allowedAlgorithms(
  configured: unknown,
  defaults: readonly string[],
  permitted: readonly string[],
  what: string,
): string[] {
  const algorithms: unknown = configured ?? defaults;
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new ConfigError('jwt.algorithms', `must be a non-empty array of algorithms that fit ${what}`);
  }
  const result: string[] = [];
  for (const alg of algorithms) {
    if (typeof alg !== 'string') throw new ConfigError('jwt.algorithms', 'must contain only strings');
    if (alg.toLowerCase() === 'none') throw new ConfigError('jwt.algorithms', "'none' is never allowed");
    if (!permitted.includes(alg)) {
      throw new ConfigError('jwt.algorithms', `'${alg}' cannot be used with ${what}; allowed: ${permitted.join(', ')}`);
    }
    result.push(alg);
  }
  return result;
}

function remoteKeys(options: JwtOptions, clock: Clock, logger: Logger | undefined): RemoteKeySet {
  let parsed: URL;
  try {
    parsed = new URL(String(options.jwksUrl));
  } catch {
    throw new ConfigError('jwt.jwksUrl', 'must be an absolute http(s) URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ConfigError('jwt.jwksUrl', 'must be an absolute http(s) URL');
  }
  return new RemoteKeySet(parsed, jwksSettings(options), clock, logger);
}

function nonEmpty(option: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(option, 'must be a non-empty string');
  return value;
}

/** jose error codes that map to one reason whatever their details. */
const JOSE_REASONS: ReadonlyMap<string, TokenFailureReason> = new Map<string, TokenFailureReason>([
  ['ERR_JWT_EXPIRED', 'expired'],
  ['ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'signature'],
  ['ERR_JOSE_ALG_NOT_ALLOWED', 'algorithm'],
  // Every alg in the allowlist is one jose supports, so the token can only reach this with a
  // critical header extension nobody understands.
  ['ERR_JOSE_NOT_SUPPORTED', 'malformed'],
  ['ERR_JWS_INVALID', 'malformed'],
  ['ERR_JWT_INVALID', 'malformed'],
]);

/**
 * Maps a jose failure to a stable reason. Token-derived errors are not kept as `cause`: their
 * messages and `payload` can echo the token's content into logs.
 */
function toTokenError(error: unknown): TokenError | KeysUnavailableError {
  if (error instanceof TokenError || error instanceof KeysUnavailableError) return error;
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new TokenError(error.claim === 'nbf' && error.reason === 'check_failed' ? 'not_yet_valid' : 'claims');
  }
  if (error instanceof errors.JOSEError) {
    const reason = JOSE_REASONS.get(error.code);
    if (reason !== undefined) return new TokenError(reason);
    // A key of the set that cannot be used (not public, unsupported): it cannot verify the token.
    if (error.code.startsWith('ERR_JWKS_')) return new TokenError('signature', { cause: error });
  }
  // Not from the token's shape (jose raises its own errors for those): most likely a key that does
  // not fit the algorithm. Kept as cause for whoever debugs the configuration.
  return new TokenError('signature', { cause: error });
}
