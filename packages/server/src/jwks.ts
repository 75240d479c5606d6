import { createLocalJWKSet, errors } from 'jose';
import type { FlattenedJWSInput, JWSHeaderParameters, JWTVerifyGetKey } from 'jose';
import type { Clock } from './clock.js';
import { ConfigError, KeysUnavailableError, TokenError } from './errors.js';
import { type Logger, silentLogger } from './logger.js';

/** One JWKS option of `jwt`: declared once, with its default, for the library, the CLI and the docs. */
export interface JwksOptionSpec {
  readonly default: number;
  /** The smallest value allowed. */
  readonly min: 0 | 1;
  readonly description: string;
}

/** The JWKS cache options of `jwt` (only with `jwksUrl`), in ms. */
export const JWKS_OPTIONS = {
  jwksCacheMaxAgeMs: {
    default: 600_000,
    min: 1,
    description: 'How long a fetched JWKS is used before it is fetched again (a key the IdP removed is dropped by then).',
  },
  jwksCooldownMs: {
    default: 1_000,
    min: 0,
    description:
      'Least time between two fetches (real time, or the gateway clock if it moves first): a token with an unknown `kid` waits at most this long for a refetch (key rotation), and an outage is probed at most this often.',
  },
  jwksTimeoutMs: {
    default: 5_000,
    min: 1,
    description: 'How long one fetch may take (connect, headers and body) before it counts as failed.',
  },
  jwksStaleIfErrorMs: {
    default: 3_600_000,
    min: 0,
    description:
      'While the JWKS endpoint cannot be reached, cached keys are kept this long past their max age (then tokens are refused with 503 / `1011`, never as invalid). 0: not at all.',
  },
} as const satisfies Record<string, JwksOptionSpec>;

export type JwksOptionName = keyof typeof JWKS_OPTIONS;
export type JwksSettings = Record<JwksOptionName, number>;

/** Validates the JWKS options of `jwt` (named `jwt.<option>` in errors) and fills in the defaults. */
export function jwksSettings(options: Partial<Record<JwksOptionName, unknown>>): JwksSettings {
  const settings = {} as JwksSettings;
  for (const [name, spec] of Object.entries(JWKS_OPTIONS) as Array<[JwksOptionName, JwksOptionSpec]>) {
    const value = options[name] ?? spec.default;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < spec.min) {
      throw new ConfigError(`jwt.${name}`, `expected ${spec.min === 0 ? 'a non-negative' : 'a positive'} integer of ms, got ${String(value)}`);
    }
    settings[name] = value;
  }
  return settings;
}

/** What `/healthz` says of the key source: fetched fine (or not yet needed), serving stale keys, or none usable. */
export type JwksStatus = 'ok' | 'stale' | 'unavailable';

/** Largest JWKS body read; a key set is a few KB. */
const MAX_JWKS_BYTES = 1_048_576;

type LocalKeys = ReturnType<typeof createLocalJWKSet>;

/**
 * A remote JWKS with the cache policy jose's `createRemoteJWKSet` lacks: time from the injected
 * clock; an unknown `kid` refetched after at most `jwksCooldownMs` (not jose's fixed 30 s); and
 * stale-if-error: while fetches fail, the last good set is used up to `jwksStaleIfErrorMs` past
 * its max age. A failed fetch with no usable keys is a `KeysUnavailableError` (an outage), a key
 * the freshly fetched set does not hold a `TokenError('unknown_key')` (a bad token).
 */
export class RemoteKeySet {
  readonly #url: URL;
  /** Origin and path: what logs and errors name (a query string could hold a credential). */
  readonly #name: string;
  readonly #settings: JwksSettings;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #keys: LocalKeys | undefined;
  /** Clock time of the last successful fetch. */
  #fetchedAt = Number.NEGATIVE_INFINITY;
  /** Clock time the last fetch started, and the same instant in real (monotonic) time. */
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #attemptedAtReal = Number.NEGATIVE_INFINITY;
  /** Fetches finished (either way), so a request can tell whether one completed while it waited. */
  #fetches = 0;
  /** Why the last fetch failed; undefined after a success. */
  #failure: unknown;
  #refreshing: Promise<void> | undefined;
  /** A refetch scheduled for the end of the cooldown, shared by every unknown `kid` until then. */
  #scheduled: Promise<void> | undefined;
  /** Whether the outage was already logged as having left no usable keys. */
  #loggedExhausted = false;

  constructor(url: URL, settings: JwksSettings, clock: Clock, logger: Logger = silentLogger) {
    this.#url = url;
    this.#name = `${url.origin}${url.pathname}`;
    this.#settings = settings;
    this.#clock = clock;
    this.#logger = logger;
  }

  /** The function jose's `jwtVerify` asks for a key. */
  readonly getKey: JWTVerifyGetKey = (header, token) => this.#getKey(header, token);

  get status(): JwksStatus {
    if (this.#failure === undefined) return 'ok';
    return this.#usable(this.#clock.now()) ? 'stale' : 'unavailable';
  }

  async #getKey(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<Awaited<ReturnType<LocalKeys>>> {
    const seen = this.#fetches;
    if (this.#clock.now() - this.#fetchedAt >= this.#settings.jwksCacheMaxAgeMs) await this.#refresh();
    const keys = this.#current();
    try {
      return await keys(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
    }
    // While the IdP cannot be reached nobody can tell a new key from a bad one: an outage.
    if (this.#failure !== undefined) throw this.#unavailable();
    // Fetched while this request waited: the set is current, and the kid is not in it.
    if (this.#fetches !== seen) throw new TokenError('unknown_key');
    // Maybe a key the IdP added after the last fetch: refetch as soon as the cooldown allows.
    await this.#refetchSoon();
    try {
      return await this.#current()(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) {
        if (this.#failure !== undefined) throw this.#unavailable();
        throw new TokenError('unknown_key');
      }
      throw error;
    }
  }

  /** The keys to use now, fresh or within the stale bound; else the outage as an error. */
  #current(): LocalKeys {
    if (this.#keys === undefined || !this.#usable(this.#clock.now())) throw this.#unavailable();
    return this.#keys;
  }

  #usable(now: number): boolean {
    return this.#keys !== undefined && now - this.#fetchedAt < this.#settings.jwksCacheMaxAgeMs + this.#settings.jwksStaleIfErrorMs;
  }

  #unavailable(): KeysUnavailableError {
    if (!this.#loggedExhausted && this.#keys !== undefined) {
      this.#loggedExhausted = true;
      this.#logger.error({ jwksUrl: this.#name, staleIfErrorMs: this.#settings.jwksStaleIfErrorMs }, 'JWKS unreachable past the stale bound: cached keys dropped');
    }
    return new KeysUnavailableError(this.#name, this.#failure === undefined ? undefined : { cause: this.#failure });
  }

  /**
   * Time since the last fetch started, on whichever of the gateway's clock and real time moved
   * further: the cooldown is a rate limit on real requests, and a test's clock may stand still.
   */
  #sinceAttempt(): number {
    return Math.max(this.#clock.now() - this.#attemptedAt, performance.now() - this.#attemptedAtReal);
  }

  /** Fetches unless a fetch is under way (joined) or one was tried within the cooldown (skipped). */
  #refresh(force = false): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    if (!force && this.#sinceAttempt() < this.#settings.jwksCooldownMs) return Promise.resolve();
    this.#refreshing = this.#fetch().finally(() => {
      this.#fetches++;
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** A refetch at the end of the cooldown (at once when it is over), shared by concurrent callers. */
  #refetchSoon(): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    const wait = this.#settings.jwksCooldownMs - this.#sinceAttempt();
    if (wait <= 0) return this.#refresh();
    this.#scheduled ??= new Promise<void>((resolve) => {
      let fired = false;
      // Whichever clock reaches the end of the cooldown first.
      const fire = () => {
        if (fired) return;
        fired = true;
        clearTimeout(real);
        this.#clock.clearTimeout(onClock);
        this.#scheduled = undefined;
        void this.#refresh(true).then(resolve);
      };
      const real = setTimeout(fire, wait);
      real.unref();
      const onClock = this.#clock.setTimeout(fire, wait);
    });
    return this.#scheduled;
  }

  async #fetch(): Promise<void> {
    this.#attemptedAt = this.#clock.now();
    this.#attemptedAtReal = performance.now();
    try {
      const keys = await this.#download();
      this.#keys = keys;
      this.#fetchedAt = this.#clock.now();
      if (this.#failure !== undefined) this.#logger.info({ jwksUrl: this.#name }, 'JWKS reachable again');
      this.#failure = undefined;
      this.#loggedExhausted = false;
    } catch (error) {
      if (this.#failure === undefined) {
        const stale = this.#usable(this.#clock.now());
        this.#logger.warn(
          { jwksUrl: this.#name, err: String(error), cachedKeys: stale ? 'kept (stale-if-error)' : 'none' },
          'JWKS fetch failed',
        );
      }
      this.#failure = error;
    }
  }

  /** GET the set, bounded by `jwksTimeoutMs` from connect to the last byte; no redirects followed. */
  async #download(): Promise<LocalKeys> {
    const response = await fetch(this.#url, {
      headers: { accept: 'application/json, application/jwk-set+json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(this.#settings.jwksTimeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw new Error(`expected 200 OK from the JWKS endpoint, got ${response.status}`);
    }
    const declared = Number(response.headers.get('content-length') ?? 0);
    if (declared > MAX_JWKS_BYTES) {
      await response.body?.cancel().catch(() => undefined);
      throw new Error(`JWKS larger than ${MAX_JWKS_BYTES} bytes`);
    }
    const text = await response.text();
    if (text.length > MAX_JWKS_BYTES) throw new Error(`JWKS larger than ${MAX_JWKS_BYTES} bytes`);
    // createLocalJWKSet refuses anything that is not `{ keys: [...] }` (JWKSInvalid).
    return createLocalJWKSet(JSON.parse(text) as Parameters<typeof createLocalJWKSet>[0]);
  }
}
