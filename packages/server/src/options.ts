import { randomBytes } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { clientAddressResolver, type TrustProxy } from './client-address.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { Connection } from './session.js';
import { ConfigError } from './errors.js';
import type { Broker } from './broker.js';
import { MemoryBroker } from './memory-broker.js';
import { type Logger, silentLogger } from './logger.js';
import type { RateLimit } from './rate-limit.js';
import { MemoryRevocationStore, MemoryTicketStore, type RevocationStore, type TicketStore } from './stores.js';
import type { JwtOptions } from './token-verifier.js';

export type ExpiryPolicy = 'ignore' | 'close' | 'reauth';
export type TicketMode = 'off' | 'optional' | 'required';
export type TopicAction = 'subscribe' | 'publish';

/** What the application's `onMessage` receives for each `message` frame. */
export interface MessageEvent {
  readonly connection: Connection;
  readonly user: string;
  /** Claims of the token that authenticated this message (per-message mode) or the connection. */
  readonly claims: JWTPayload;
  readonly data: unknown;
}

export interface GatewayOptions {
  /** How JWTs are verified (key, algorithms, issuer, audience). Required. */
  jwt: JwtOptions;
  /** Whether the upgrade takes a ticket: `off`, `optional` (default) or `required` (401 without one). */
  ticket?: TicketMode;
  /** Ticket lifetime in ms. Default 30_000. */
  ticketTtlMs?: number;
  /** Let a ticket be redeemed again within its TTL, as seed 001 allows. Default false (single use). */
  ticketReuse?: boolean;
  /** Two-layer mode: even a ticket-authenticated socket must send `auth` with the same user. Default false. */
  requireAuthMessage?: boolean;
  /** Accept a JWT at the handshake (`token.<jwt>` subprotocol or `?token=`). Default false: URLs get logged. */
  handshakeToken?: boolean;
  /** Every `message`/`publish` must carry a `token`, verified through a bounded cache. Default false. */
  perMessageAuth?: boolean;
  /** Entries in the per-message verification cache. Default 10_000. */
  verificationCacheSize?: number;
  /** How long an unauthenticated socket may stay open, in ms, before `4408`. Default 10_000. */
  authTimeoutMs?: number;
  /** What happens when a connection's token expires. Default `reauth`. */
  expiryPolicy?: ExpiryPolicy;
  /** Under `reauth`: how long before `exp` to send `reauth_required {reason: 'expiring'}`. Default 30_000. */
  reauthWindowMs?: number;
  /** Under `reauth`: how long after `exp` a held connection may still reauth before `4419`. Default 10_000. */
  reauthGraceMs?: number;
  /** Messages held for one connection awaiting reauth; one more closes it `4008`. Default 1_000. */
  maxHeldMessages?: number;
  /** On `logout`, close the socket with 1000 instead of keeping it open for a new `auth`. Default false. */
  closeOnLogout?: boolean;
  /** Serve only upgrades to this path (others get 404). Default: any path. */
  path?: string;
  /** Exact `Origin` values allowed to upgrade (403 otherwise). Default: any origin. */
  allowedOrigins?: readonly string[];
  /** Largest accepted frame in bytes (`1009` beyond). Default 65_536. */
  maxPayload?: number;
  /** Outbound bytes buffered for one connection before it is closed as a slow consumer (`4008`). Default 1_048_576. */
  maxBufferedBytes?: number;
  /** Frames per connection. Default 1_000 per 1_000 ms; beyond: `4429`. */
  messageRateLimit?: RateLimit;
  /** `auth` frames per connection. Default 10 per 60_000 ms; beyond: `4429`. */
  authRateLimit?: RateLimit;
  /** Upgrade attempts per client address, or false. Default 300 per 10_000 ms; beyond: HTTP 429. */
  upgradeRateLimit?: RateLimit | false;
  /**
   * Proxies whose `Forwarded` / `X-Forwarded-For` say who the client is, for rate limits and logs:
   * a number of hops (the nearest `n`), or their addresses / CIDRs. Default 0: trust no header.
   */
  trustProxy?: TrustProxy;
  /** This node's name in `/healthz`, logs and metrics. Default: the broker's node id, else random. */
  nodeId?: string;
  /** Ping interval in ms; a peer that did not answer the previous ping is terminated. 0 disables. Default 30_000. */
  heartbeatIntervalMs?: number;
  /**
   * Per-stream history for resume: every `sendToUser` and topic publish is kept, bounded by count and
   * age (bounds apply to the default in-memory broker), or `false` for none (frames then carry no
   * offsets). Default `{ maxEntries: 1_000, maxAgeMs: 300_000 }`.
   */
  history?: { maxEntries?: number; maxAgeMs?: number } | false;
  /** Moves publications between nodes and keeps history. Default: a single-node in-memory broker. */
  broker?: Broker;
  /** Where tickets live. Default: in memory. */
  ticketStore?: TicketStore;
  /** Where revocations live. Default: in memory. */
  revocationStore?: RevocationStore;
  /** The application's handler for `message` frames; may return a promise. `ack` follows it. */
  onMessage?: (event: MessageEvent) => void | Promise<void>;
  /** Whether `user` may subscribe to or publish on `topic`. Default: allowed. */
  authorize?: (user: string, action: TopicAction, topic: string) => boolean | Promise<boolean>;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
  /** Time source for expiry, deadlines and rate limits. Default: the system clock. */
  clock?: Clock;
}

export type ResolvedOptions = Required<Omit<GatewayOptions, 'path' | 'allowedOrigins' | 'onMessage'>> &
  Pick<GatewayOptions, 'path' | 'allowedOrigins' | 'onMessage'>;

const DEFAULTS = {
  ticket: 'optional',
  ticketTtlMs: 30_000,
  ticketReuse: false,
  requireAuthMessage: false,
  handshakeToken: false,
  perMessageAuth: false,
  verificationCacheSize: 10_000,
  authTimeoutMs: 10_000,
  expiryPolicy: 'reauth',
  reauthWindowMs: 30_000,
  reauthGraceMs: 10_000,
  maxHeldMessages: 1_000,
  closeOnLogout: false,
  maxPayload: 65_536,
  maxBufferedBytes: 1_048_576,
  messageRateLimit: { limit: 1_000, windowMs: 1_000 },
  authRateLimit: { limit: 10, windowMs: 60_000 },
  upgradeRateLimit: { limit: 300, windowMs: 10_000 },
  heartbeatIntervalMs: 30_000,
  trustProxy: 0,
  history: { maxEntries: 1_000, maxAgeMs: 300_000 },
  authorize: () => true,
  logger: silentLogger,
  clock: systemClock,
} as const satisfies Partial<GatewayOptions>;

function positiveInteger(name: string, value: number, allowZero = false): void {
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new ConfigError(name, `expected ${allowZero ? 'a non-negative' : 'a positive'} integer, got ${value}`);
  }
}

function rateLimit(name: string, value: RateLimit): void {
  positiveInteger(`${name}.limit`, value.limit);
  positiveInteger(`${name}.windowMs`, value.windowMs);
}

/** Merges `options` over the defaults once and rejects invalid or conflicting values by name. */
export function resolveOptions(options: GatewayOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') throw new ConfigError('options', 'expected an object');
  if (!options.jwt) throw new ConfigError('jwt', 'is required');
  // `{ maxPayload: undefined }` means "the default", as an omitted option does.
  const given = Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as Partial<GatewayOptions>;
  const clock = given.clock ?? DEFAULTS.clock;
  const resolved: ResolvedOptions = {
    ...DEFAULTS,
    ticketStore: new MemoryTicketStore(() => clock.now()),
    revocationStore: new MemoryRevocationStore(),
    broker: new MemoryBroker({
      ...(given.history === false ? {} : given.history),
      now: () => clock.now(),
    }),
    ...given,
    jwt: options.jwt,
    nodeId: given.nodeId ?? given.broker?.nodeId ?? randomBytes(6).toString('base64url'),
  };

  if (!['off', 'optional', 'required'].includes(resolved.ticket)) {
    throw new ConfigError('ticket', `expected 'off', 'optional' or 'required', got '${resolved.ticket}'`);
  }
  if (!['ignore', 'close', 'reauth'].includes(resolved.expiryPolicy)) {
    throw new ConfigError('expiryPolicy', `expected 'ignore', 'close' or 'reauth', got '${resolved.expiryPolicy}'`);
  }
  if (resolved.requireAuthMessage && resolved.ticket !== 'required') {
    throw new ConfigError('requireAuthMessage', "two-layer mode needs ticket: 'required'");
  }
  for (const name of [
    'ticketTtlMs',
    'verificationCacheSize',
    'authTimeoutMs',
    'maxHeldMessages',
    'maxPayload',
    'maxBufferedBytes',
  ] as const) {
    positiveInteger(name, resolved[name]);
  }
  for (const name of ['reauthWindowMs', 'reauthGraceMs', 'heartbeatIntervalMs'] as const) {
    positiveInteger(name, resolved[name], true);
  }
  if (resolved.history) {
    positiveInteger('history.maxEntries', resolved.history.maxEntries ?? 1);
    positiveInteger('history.maxAgeMs', resolved.history.maxAgeMs ?? 1);
  }
  rateLimit('messageRateLimit', resolved.messageRateLimit);
  rateLimit('authRateLimit', resolved.authRateLimit);
  if (resolved.upgradeRateLimit) rateLimit('upgradeRateLimit', resolved.upgradeRateLimit);
  clientAddressResolver(resolved.trustProxy);
  if (typeof resolved.nodeId !== 'string' || !/^[\w.:-]{1,128}$/.test(resolved.nodeId)) {
    throw new ConfigError('nodeId', 'expected 1-128 letters, digits or . _ : -');
  }
  if (resolved.path !== undefined && !resolved.path.startsWith('/')) {
    throw new ConfigError('path', `expected a path starting with '/', got '${resolved.path}'`);
  }
  return resolved;
}
