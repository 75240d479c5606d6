import { randomBytes } from 'node:crypto';
import { dropUndefined } from '@authsocket/protocol';
import type { Broker } from './broker.js';
import { clientAddressResolver, type TrustProxy } from './client-address.js';
import { type Clock, systemClock } from './clock.js';
import type { MessageContext, MessageHandler } from './core/ports.js';
import { DEFAULT_HISTORY, DEFAULT_TICKET_TTL_MS } from './defaults.js';
import { ConfigError } from './errors.js';
import { type Logger, silentLogger } from './logger.js';
import { MemoryBroker } from './memory-broker.js';
import type { RateLimit } from './rate-limit.js';
import type { ConnectionStore } from './connection-store.js';
import { type PermissionRule, Permissions, type TopicAction } from './permissions.js';
import { MemoryPresenceStore, type PresenceStore } from './presence-store.js';
import { MemoryRevocationStore, MemoryTicketStore, type RevocationStore, type TicketStore } from './stores.js';
import type { JwtOptions } from './token-verifier.js';

export type ExpiryPolicy = 'ignore' | 'close' | 'reauth';
export type TicketMode = 'off' | 'optional' | 'required';
export type { TopicAction };
export type HistoryOptions = { maxEntries?: number; maxAgeMs?: number } | false;

/** Presence (who is subscribed to a topic), for the topics that have it. */
export interface PresenceOptions {
  /** Which topics have presence: exact names, or prefixes ending in `*` (`chat:*`). Default: every topic. */
  readonly topics?: readonly string[];
  /** A claim of the member's token copied into `member.info` (e.g. `'name'`); default: no info. */
  readonly infoClaim?: string;
  /** The most members one topic may hold; a subscribe beyond is refused `limit_exceeded`. Default: no cap. */
  readonly maxMembers?: number;
  /** Send `join` / `leave` frames to the topic's subscribers. Default false. */
  readonly joinLeave?: boolean;
}

/** What the application's `onMessage` receives for each `message` frame (it can also reply, publish, close). */
export type MessageEvent = MessageContext;

/** One gateway option: declared once, with everything the code, the CLI and the docs need of it. */
export interface OptionSpec<T> {
  /** Its type, as the docs print it. */
  readonly type: string;
  /** The value used when it is omitted (or `undefined`). */
  readonly default?: T;
  /** Said instead of `default` when the default is made at start (a store, the node id) or is code. */
  readonly defaultText?: string;
  readonly description: string;
  /** Throws `ConfigError` naming `name` for a value it refuses. */
  readonly check?: (name: string, value: T) => void;
}

function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

// ---------------------------------------------------------------- checks

function integer(min: 0 | 1) {
  return (name: string, value: number): void => {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new ConfigError(name, `expected ${min === 0 ? 'a non-negative' : 'a positive'} integer, got ${value}`);
    }
  };
}
const positive = integer(1);
const nonNegative = integer(0);

function oneOf<T extends string>(...values: readonly T[]) {
  const expected = values.map((value) => `'${value}'`);
  const text = `${expected.slice(0, -1).join(', ')} or ${expected.at(-1)}`;
  return (name: string, value: T): void => {
    if (!values.includes(value)) throw new ConfigError(name, `expected ${text}, got '${value}'`);
  };
}

function claimName(name: string, value: string): void {
  if (typeof value !== 'string' || !/^[\w.:-]{1,64}$/.test(value)) throw new ConfigError(name, 'expected a claim name (1-64 letters, digits or . _ : -)');
}

function rateLimit(name: string, value: RateLimit | false): void {
  if (value === false) return;
  positive(`${name}.limit`, value.limit);
  positive(`${name}.windowMs`, value.windowMs);
}

function presence(name: string, value: PresenceOptions | false): void {
  if (value === false) return;
  if (typeof value !== 'object' || value === null) throw new ConfigError(name, 'expected false or an object { topics?, infoClaim?, maxMembers?, joinLeave? }');
  const { topics, infoClaim, maxMembers, joinLeave } = value;
  if (topics !== undefined) {
    if (!Array.isArray(topics)) throw new ConfigError(`${name}.topics`, 'expected an array of topic names or prefixes ending in *');
    for (const topic of topics as unknown[]) {
      if (typeof topic !== 'string' || topic === '') throw new ConfigError(`${name}.topics`, `expected topic names or prefixes ending in * (like 'chat:*'), got ${JSON.stringify(topic)}`);
    }
  }
  if (infoClaim !== undefined && (typeof infoClaim !== 'string' || infoClaim === '')) {
    throw new ConfigError(`${name}.infoClaim`, 'expected a claim name');
  }
  if (maxMembers !== undefined) positive(`${name}.maxMembers`, maxMembers);
  if (joinLeave !== undefined && typeof joinLeave !== 'boolean') throw new ConfigError(`${name}.joinLeave`, `expected a boolean, got ${JSON.stringify(joinLeave)}`);
}

function history(name: string, value: HistoryOptions): void {
  if (value === false) return;
  positive(`${name}.maxEntries`, value.maxEntries ?? 1);
  positive(`${name}.maxAgeMs`, value.maxAgeMs ?? 1);
}

/** An on/off option, off by default. */
function flag(description: string): OptionSpec<boolean> {
  return { type: 'boolean', default: false, description };
}

/** A whole number of ms, bytes or things. */
function count(
  type: 'ms' | 'bytes' | 'integer',
  value: number,
  check: (name: string, value: number) => void,
  description: string,
): OptionSpec<number> {
  return { type, default: value, description, check };
}

/** A `{ limit, windowMs }` rule; `optional`: `false` turns it off. */
function rate(value: RateLimit, description: string): OptionSpec<RateLimit>;
function rate(value: RateLimit, description: string, optional: true): OptionSpec<RateLimit | false>;
function rate(value: RateLimit, description: string, optional = false): OptionSpec<RateLimit> | OptionSpec<RateLimit | false> {
  return { type: optional ? '{ limit, windowMs } | false' : '{ limit, windowMs }', default: value, description, check: rateLimit };
}

// ---------------------------------------------------------------- the table

/**
 * Every option of `createGateway`, once: type, default, description and validation. `GatewayOptions`,
 * `resolveOptions` and `describeOptions()` (for the CLI and the docs) are derived from it.
 */
export const GATEWAY_OPTIONS = {
  jwt: option<JwtOptions>({ type: 'JwtOptions', description: 'How JWTs are verified (key, algorithms, issuer, audience). Required.' }),
  ticket: option<TicketMode>({
    type: "'off' | 'optional' | 'required'",
    default: 'optional',
    description: 'Whether the upgrade takes a ticket; `required` answers 401 without one.',
    check: oneOf('off', 'optional', 'required'),
  }),
  ticketTtlMs: count('ms', DEFAULT_TICKET_TTL_MS, positive, 'Ticket lifetime.'),
  ticketReuse: flag('Let a ticket be redeemed again within its TTL (default: single use).'),
  requireAuthMessage: flag("Two-layer mode: even a ticket-authenticated socket must send `auth` with the same user. Needs ticket: 'required'."),
  acceptNoSubprotocol: flag(
    "Take an upgrade that offers no subprotocol at all as `authsocket.v1` (a third-party client that cannot set one); it then authenticates with its first `auth` frame or `?ticket=`.",
  ),
  handshakeToken: flag('Accept a JWT at the handshake (`token.<jwt>` subprotocol or `?token=`); off by default because URLs get logged.'),
  perMessageAuth: flag('Every `message`/`publish` must carry a `token`, verified through a bounded cache.'),
  verificationCacheSize: count('integer', 10_000, positive, 'Entries in the per-message verification cache.'),
  authTimeoutMs: count('ms', 10_000, positive, 'How long an unauthenticated socket may stay open before `4408`.'),
  expiryPolicy: option<ExpiryPolicy>({
    type: "'ignore' | 'close' | 'reauth'",
    default: 'reauth',
    description: "What happens when a connection's token expires.",
    check: oneOf('ignore', 'close', 'reauth'),
  }),
  reauthWindowMs: count('ms', 30_000, nonNegative, "Under `reauth`: how long before `exp` to send `reauth_required {reason: 'expiring'}`."),
  reauthGraceMs: count('ms', 10_000, nonNegative, 'Under `reauth`: how long after `exp` a held connection may still reauth before `4419`.'),
  maxHeldMessages: count('integer', 1_000, positive, 'Messages held for one connection awaiting reauth; one more closes it `4008`.'),
  closeOnLogout: flag('On `logout`, close the socket with 1000 instead of keeping it open for a new `auth`.'),
  path: option<string>({
    type: 'string',
    defaultText: 'any path',
    description: 'Serve only upgrades to this path (others get 404).',
    check: (name, value) => {
      if (!value.startsWith('/')) throw new ConfigError(name, `expected a path starting with '/', got '${value}'`);
    },
  }),
  allowedOrigins: option<readonly string[]>({
    type: 'string[]',
    defaultText: 'any origin',
    description: 'Exact `Origin` values allowed to upgrade (403 otherwise).',
  }),
  maxPayload: count('bytes', 65_536, positive, 'Largest accepted frame (`1009` beyond).'),
  maxConnectionsPerUser: count(
    'integer',
    100,
    positive,
    "Authenticated connections one user may hold on this node; one more closes `4409` (a leaking client cannot exhaust the node).",
  ),
  maxBufferedBytes: count('bytes', 1_048_576, positive, 'Outbound bytes buffered for one connection before it is closed as a slow consumer (`4008`).'),
  messageRateLimit: rate({ limit: 1_000, windowMs: 1_000 }, 'Frames per connection; beyond: `4429`.'),
  authRateLimit: rate({ limit: 10, windowMs: 60_000 }, '`auth` frames per connection; beyond: `4429`.'),
  upgradeRateLimit: rate({ limit: 300, windowMs: 10_000 }, 'Upgrade attempts per client address; beyond: HTTP 429.', true),
  trustProxy: option<TrustProxy>({
    type: 'number | string[]',
    default: 0,
    description:
      'Proxies whose `Forwarded` / `X-Forwarded-For` say who the client is, for rate limits and logs: a number of hops (the nearest `n`), or their addresses / CIDRs. 0: trust no header.',
    check: (_name, value) => void clientAddressResolver(value),
  }),
  nodeId: option<string>({
    type: 'string',
    defaultText: "the broker's node id, else random",
    description: "This node's name in `/healthz`, logs and metrics.",
    check: (name, value) => {
      if (typeof value !== 'string' || !/^[\w.:-]{1,128}$/.test(value)) {
        throw new ConfigError(name, 'expected 1-128 letters, digits or . _ : -');
      }
    },
  }),
  heartbeatIntervalMs: count('ms', 30_000, nonNegative, 'Ping interval; a peer that did not answer the previous ping is terminated. 0 disables.'),
  history: option<HistoryOptions>({
    type: '{ maxEntries, maxAgeMs } | false',
    default: DEFAULT_HISTORY,
    description:
      'Per-stream history for resume: every `sendToUser` and topic publish is kept, bounded by count and age (bounds apply to the default in-memory broker), or `false` for none (frames then carry no offsets).',
    check: history,
  }),
  presence: option<PresenceOptions | false>({
    type: '{ topics?, infoClaim?, maxMembers?, joinLeave? } | false',
    default: false,
    description:
      "Presence per topic: who is subscribed (`presence` frame, `GET /api/topics/:topic/presence`). Off by default: it costs a store write per subscribe. `topics`: names or `prefix*` (default all); `infoClaim`: a token claim shown as `member.info`; `maxMembers`: a cap per topic (`limit_exceeded`); `joinLeave`: `join`/`leave` frames to subscribers.",
    check: presence,
  }),
  broker: option<Broker>({
    type: 'Broker',
    defaultText: 'a single-node in-memory broker',
    description: 'Moves publications between nodes and keeps history.',
  }),
  ticketStore: option<TicketStore>({ type: 'TicketStore', defaultText: 'in memory', description: 'Where tickets live.' }),
  revocationStore: option<RevocationStore>({
    type: 'RevocationStore',
    defaultText: 'in memory',
    description: 'Where revocations live.',
  }),
  connectionStore: option<ConnectionStore | false>({
    type: 'ConnectionStore | false',
    // Not `default`: the CLI's `--registry on` means "the engine's store, if any", not this value.
    defaultText: 'false',
    description:
      "The registry of who is connected, on which node, until when, across every node (the Redis engine's on several nodes); `false`: none, each node answers from its own sockets (all there is on one node).",
  }),
  presenceStore: option<PresenceStore>({
    type: 'PresenceStore',
    defaultText: 'in memory',
    description: "Who is subscribed to which topic, across every node (the Redis engine's on several nodes).",
  }),
  onMessage: option<(event: MessageEvent) => unknown>({
    type: '(event) => unknown',
    defaultText: 'none: messages are acknowledged',
    description: 'The application\'s handler for `message` frames; `ack` follows it, with what it resolved with (if not undefined) as `ack.data`. Not together with `handler`.',
  }),
  handler: option<MessageHandler>({
    type: 'MessageHandler',
    defaultText: 'the callbacks `onMessage` and `authorize`',
    description: 'The application side as one object (`onMessage`, `onSubscribe`, …), e.g. an HTTP proxy or a queue.',
  }),
  authorize: option<(user: string, action: TopicAction, topic: string) => boolean | Promise<boolean>>({
    type: '(user, action, topic) => boolean | Promise<boolean>',
    default: () => true,
    defaultText: 'everything allowed',
    description: "Whether `user` may subscribe to, publish on or read the presence of `topic` (action `'subscribe'`, `'publish'`, `'presence'`).",
  }),
  permissions: option<readonly PermissionRule[]>({
    type: '{ topics, allow, when? }[]',
    defaultText: 'none: `authorize` decides',
    description:
      "Topic permissions from the token: rules `{ topics: 'user:{sub}:*', allow: ['subscribe', 'presence'], when?: { role: 'admin' } }` (`*` only at a pattern's end, `{claim}` a claim of the token). Given (or `permissionsClaim`), they decide subscribe, publish and presence instead of `authorize`; a handler's `onSubscribe`/`onPublish` still runs after an allow.",
    check: (_name, value) => void new Permissions(value, undefined),
  }),
  permissionsClaim: option<string>({
    type: 'string',
    defaultText: 'none',
    description:
      'A claim holding the token\'s own topic patterns: an array (subscribe and presence) or `{ subscribe, publish, presence }` of arrays; a malformed one refuses the request with an `error` frame naming the claim.',
    check: claimName,
  }),
  subscribeClaim: option<string>({
    type: 'string',
    defaultText: 'none',
    description: 'A claim holding topics the connection joins at connect, like `ConnectResult.topics` (an array of topics without `*`).',
    check: claimName,
  }),
  subscriptionTokenClaim: option<string | false>({
    type: 'string | false',
    default: 'topic',
    description:
      "The claim of a subscription token (`subscribe {topic, token}`, verified like connection tokens, for this connection's user) that names its one topic; a token carrying it is never accepted as a connection token. `false`: subscription tokens are refused.",
    check: (name, value) => {
      if (value !== false) claimName(name, value);
    },
  }),
  logger: option<Logger>({ type: 'Logger', default: silentLogger, defaultText: 'silent', description: 'pino-compatible logger.' }),
  clock: option<Clock>({
    type: 'Clock',
    default: systemClock,
    defaultText: 'the system clock',
    description: 'Time source for expiry, deadlines and rate limits.',
  }),
} as const;

type Table = typeof GATEWAY_OPTIONS;
type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;
/** Options that stay undefined when omitted. */
type Unset = 'path' | 'allowedOrigins' | 'onMessage' | 'handler' | 'permissions' | 'permissionsClaim' | 'subscribeClaim';

/** The options of `createGateway`; `GATEWAY_OPTIONS` (or `describeOptions()`) documents each. */
export type GatewayOptions = { jwt: JwtOptions } & { [K in Exclude<keyof Table, 'jwt'>]?: ValueOf<Table[K]> };

export type ResolvedOptions = { readonly jwt: JwtOptions } & {
  readonly [K in Exclude<keyof Table, 'jwt' | Unset>]: ValueOf<Table[K]>;
} & { readonly [K in Unset]?: ValueOf<Table[K]> };

/** An option as the CLI and the docs print it. */
export interface OptionDescription {
  readonly name: string;
  readonly type: string;
  /** The default value when it is data, else a sentence; undefined when the option is required. */
  readonly default: unknown;
  readonly description: string;
}

const ENTRIES = Object.entries(GATEWAY_OPTIONS) as unknown as Array<[keyof Table, OptionSpec<unknown>]>;

/** Every gateway option with its type, default and description, in the table's order. */
export function describeOptions(): readonly OptionDescription[] {
  return ENTRIES.map(([name, spec]) => ({
    name,
    type: spec.type,
    default: spec.defaultText ?? spec.default,
    description: spec.description,
  }));
}

const DEFAULTS = Object.fromEntries(
  ENTRIES.filter(([, spec]) => spec.default !== undefined).map(([name, spec]) => [name, spec.default]),
) as Partial<ResolvedOptions>;

/** Merges `options` over the defaults once and rejects invalid or conflicting values by name. */
export function resolveOptions(options: GatewayOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') throw new ConfigError('options', 'expected an object');
  if (!options.jwt) throw new ConfigError('jwt', 'is required');
  // `{ maxPayload: undefined }` means "the default", as an omitted option does.
  const given = dropUndefined(options);
  const clock = given.clock ?? systemClock;
  const resolved = {
    ...DEFAULTS,
    ticketStore: new MemoryTicketStore(() => clock.now()),
    revocationStore: new MemoryRevocationStore(),
    // One node needs no store: its own sessions are the whole registry, a store in memory only a copy.
    connectionStore: false,
    presenceStore: new MemoryPresenceStore(),
    broker: new MemoryBroker({ ...(given.history === false ? {} : given.history), now: () => clock.now() }),
    ...given,
    jwt: options.jwt,
    nodeId: given.nodeId ?? given.broker?.nodeId ?? randomBytes(6).toString('base64url'),
  } as ResolvedOptions;
  for (const [name, spec] of ENTRIES) {
    const value = resolved[name];
    if (value !== undefined) spec.check?.(name, value);
  }
  if (resolved.requireAuthMessage && resolved.ticket !== 'required') {
    throw new ConfigError('requireAuthMessage', "two-layer mode needs ticket: 'required'");
  }
  if (resolved.handler !== undefined && resolved.onMessage !== undefined) {
    throw new ConfigError('handler', "give either 'handler' or 'onMessage', not both");
  }
  return resolved;
}
