import { hostname } from 'node:os';
import { REDIS_ENGINE_DEFAULTS, type RedisEngineOptions } from '@authsocket/redis';
import {
  DEFAULT_CLOCK_TOLERANCE_SEC,
  DEFAULT_JWT_ALGORITHMS,
  DEFAULT_USER_CLAIM,
  type ExpiryPolicy,
  GATEWAY_OPTIONS as LIBRARY,
  JWKS_OPTIONS,
  type JwtOptions,
  type PermissionRule,
  type TicketMode,
  type TrustProxy,
} from '@authsocket/server';
import * as parse from './parsers.js';
import type { Parser } from './parsers.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The gateway process's configuration, as `loadConfig` resolves it from flags, environment and defaults. */
export interface GatewayConfig {
  /** The JSON config file the other options were also read from; undefined: none. */
  readonly configFile: string | undefined;
  readonly port: number;
  /** Interface to listen on; undefined: every interface. */
  readonly host: string | undefined;
  readonly jwtSecret: string | undefined;
  /** PEM text (read from the file when the option named a path). */
  readonly jwtPublicKey: string | undefined;
  readonly jwksUrl: string | undefined;
  /** JWKS cache policy (`jwt.jwks*`); undefined: the library's default. Only with `jwksUrl`. */
  readonly jwksCacheMaxAgeMs: number | undefined;
  readonly jwksCooldownMs: number | undefined;
  readonly jwksTimeoutMs: number | undefined;
  readonly jwksStaleIfErrorMs: number | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  /** `jwt.algorithms`; undefined: the library's default for the key source. */
  readonly jwtAlgorithms: readonly string[] | undefined;
  /** `jwt.clockToleranceSec`. */
  readonly jwtClockToleranceSec: number;
  /** `jwt.userClaim`. */
  readonly jwtUserClaim: string;
  /** Exact `Origin` values allowed to open a WebSocket; undefined: any. */
  readonly allowedOrigins: readonly string[] | undefined;
  readonly ticketMode: TicketMode;
  readonly ticketTtlMs: number;
  readonly ticketReuse: boolean;
  /** Two-layer mode: a ticket-authenticated socket must still send `auth` with the same user. */
  readonly requireAuthMessage: boolean;
  readonly handshakeToken: boolean;
  readonly perMessageAuth: boolean;
  readonly verificationCacheSize: number;
  readonly expiryPolicy: ExpiryPolicy;
  readonly reauthWindowMs: number;
  readonly reauthGraceMs: number;
  readonly authTimeoutMs: number;
  readonly maxHeldMessages: number;
  readonly closeOnLogout: boolean;
  readonly maxPayload: number;
  readonly maxBufferedBytes: number;
  readonly messageRateLimit: { limit: number; windowMs: number };
  readonly authRateLimit: { limit: number; windowMs: number };
  /** Ping interval, 0: no heartbeat. */
  readonly heartbeatIntervalMs: number;
  /** Per-stream history for resume (also the Redis engine's bounds), or false for none. */
  readonly history: { maxEntries: number; maxAgeMs: number } | false;
  /** Authenticated connections one user may hold on this node. */
  readonly maxConnectionsPerUser: number;
  /** Upgrade attempts per client address, or false; undefined keeps the library's default (300/10s). */
  readonly upgradeRateLimit: { limit: number; windowMs: number } | false | undefined;
  /** Topic prefixes clients may subscribe to (`''` matches all), or undefined for the mode's default. */
  readonly subscribeTopics: readonly string[] | undefined;
  /** Topic prefixes clients may publish on, or undefined for the mode's default (none). */
  readonly publishTopics: readonly string[] | undefined;
  /** Permission rules (`--permission`, repeatable); undefined: none, the prefix lists decide. */
  readonly permissions: readonly PermissionRule[] | undefined;
  /** The claim holding a token's own topic patterns. */
  readonly permissionsClaim: string | undefined;
  /** The claim holding topics joined at connect. */
  readonly subscribeClaim: string | undefined;
  /** The claim naming a subscription token's topic, or false: subscription tokens refused. */
  readonly subscriptionTokenClaim: string | false;
  /** Presence per topic (the library's `presence`); the other `presence*` keys need it. */
  readonly presence: boolean;
  /** Topics with presence: exact names or prefixes ending in `*`; undefined: every topic. */
  readonly presenceTopics: readonly string[] | undefined;
  /** The token claim shown as `member.info`. */
  readonly presenceInfoClaim: string | undefined;
  /** The most members one topic may hold; undefined: no cap. */
  readonly presenceMaxMembers: number | undefined;
  /** `join` / `leave` frames to a topic's subscribers. */
  readonly presenceJoinLeave: boolean;
  /** Path WebSocket upgrades are served on. */
  readonly wsPath: string;
  /** Redis for tickets, revocations, history and fan-out; in memory without a Redis target. */
  readonly redisUrl: string | undefined;
  /** Seed nodes (`host:port`) of a Redis Cluster: the other Redis target. */
  readonly redisClusterNodes: readonly string[] | undefined;
  /** Sentinels (`host:port`) that know the Redis master: the third Redis target. */
  readonly redisSentinels: readonly string[] | undefined;
  /** Name of the master the sentinels monitor. */
  readonly redisSentinelName: string;
  /** `AUTH` password of every Redis connection (not the sentinels'), for any target. */
  readonly redisPassword: string | undefined;
  /** The Redis engine's options (`createRedisEngine`), with a Redis target only. */
  readonly redisKeyPrefix: string;
  readonly redisShards: number;
  readonly redisCommandTimeoutMs: number;
  readonly redisConnectTimeoutMs: number;
  readonly redisMaxReconnectDelayMs: number;
  readonly redisStreamTtlMs: number;
  readonly redisRevocationTtlMs: number;
  readonly redisLivenessIntervalMs: number;
  readonly redisLivenessTimeoutMs: number;
  readonly redisTrackedStreams: number;
  readonly redisIdempotencyWindowMs: number;
  readonly redisLeaseMs: number;
  /** The cluster-wide connection registry (`connectionStore`); false: each node knows only its own sockets. */
  readonly registry: boolean;
  /** Proxies whose `X-Forwarded-For` / `Forwarded` are believed; undefined: the library's default (none). */
  readonly trustProxy: TrustProxy | undefined;
  /** This node's name in `/healthz`, logs and metrics, and the Redis engine's node id. */
  readonly nodeId: string;
  /** Bearer key of the HTTP API; undefined outside demo mode disables the API. */
  readonly apiKey: string | undefined;
  /** Backend URLs of the HTTP event proxy, per event; an event without one is not proxied. */
  readonly proxyConnectUrl: string | undefined;
  readonly proxyRefreshUrl: string | undefined;
  readonly proxySubscribeUrl: string | undefined;
  readonly proxyPublishUrl: string | undefined;
  readonly proxyRpcUrl: string | undefined;
  readonly proxyDisconnectUrl: string | undefined;
  /** HMAC key the proxy signs its requests with. */
  readonly proxySecret: string | undefined;
  /** How long the proxy waits for a backend's answer; undefined: the proxy's default. */
  readonly proxyTimeoutMs: number | undefined;
  /** JWT claims the proxy forwards in its identity envelope. */
  readonly proxyForwardClaims: readonly string[] | undefined;
  /** The queue path: the Redis Stream every client `message` is appended to, for workers (`@authsocket/worker`). */
  readonly forwardStream: string | undefined;
  /** HMAC key each stream entry is signed with. */
  readonly forwardSecret: string | undefined;
  /** `XADD MAXLEN ~` of the stream; undefined: the forwarder's default (100000). */
  readonly forwardMaxLength: number | undefined;
  /** Streams `<stream>:0…n-1` the messages are spread over by connection; undefined: one stream. */
  readonly forwardPartitions: number | undefined;
  /** JWT claims copied into each entry's identity envelope. */
  readonly forwardClaims: readonly string[] | undefined;
  readonly logLevel: LogLevel;
  readonly demo: boolean;
  /** On SIGTERM: how long to stay up answering 503 on /healthz before closing the sockets. */
  readonly drainDelayMs: number;
  /** On SIGTERM: the deadline for the whole shutdown, after which the process exits anyway. */
  readonly shutdownTimeoutMs: number;
  /** Take an upgrade offering no subprotocol as `authsocket.v1`. */
  readonly acceptNoSubprotocol: boolean;
  /** Directory of static assets served at `/`; undefined: the built demo app in demo mode, if present. */
  readonly staticDir: string | undefined;
}

export type ConfigKey = keyof GatewayConfig;

/** One option: its flag `--<flag>`, its variable `AUTHSOCKET_<FLAG>`, its default and its parser. */
export interface OptionSpec<K extends ConfigKey = ConfigKey> {
  readonly key: K;
  readonly flag: string;
  readonly env: string;
  /** Its key in a `--config` file: the flag in camelCase (`--ticket-ttl`: `ticketTtl`). */
  readonly fileKey: string;
  /** Variables read after `env`, e.g. `PORT`. */
  readonly fallbackEnv: readonly string[];
  /** `boolean` options are bare flags on the command line. */
  readonly type: 'string' | 'boolean';
  /** Placeholder in `--help`, e.g. `<duration>`. */
  readonly valueName: string;
  readonly defaultValue: GatewayConfig[K];
  /** How the default reads in `--help` and the README. */
  readonly defaultLabel: string;
  readonly description: string;
  /** A credential: its value is masked wherever the configuration is printed, and never logged. */
  readonly secret: boolean;
  readonly parse: Parser<NonNullable<GatewayConfig[K]>>;
  /**
   * Repeatable: each `--<flag>` (each `;`-separated part of the variable, each element of the
   * file's array) is parsed on its own, and the arrays they give are joined in order.
   */
  readonly multiple: boolean;
}

type Definition<K extends ConfigKey> = Omit<
  OptionSpec<K>,
  'env' | 'fileKey' | 'fallbackEnv' | 'type' | 'defaultLabel' | 'secret' | 'multiple'
> &
  Partial<Pick<OptionSpec<K>, 'fallbackEnv' | 'type' | 'defaultLabel' | 'secret' | 'multiple'>>;

export const envName = (flag: string): string => `AUTHSOCKET_${flag.toUpperCase().replaceAll('-', '_')}`;
export const fileKeyName = (flag: string): string => flag.replace(/-([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());

function option<K extends ConfigKey>(definition: Definition<K>): OptionSpec {
  const spec: OptionSpec<K> = {
    env: envName(definition.flag),
    fileKey: fileKeyName(definition.flag),
    fallbackEnv: [],
    type: 'string',
    secret: false,
    multiple: false,
    defaultLabel: definition.defaultValue === undefined ? '' : String(definition.defaultValue),
    ...definition,
  };
  return spec as unknown as OptionSpec;
}

/** `<hostname>-<pid>`: unique per process on one machine, readable in logs; only the characters a node id allows. */
const DEFAULT_NODE_ID = `${hostname().replace(/[^\w.:-]/g, '-')}-${process.pid}`;

const duration = (ms: number) => ({ valueName: '<duration>', defaultLabel: parse.formatDuration(ms) });

/** The library's default for an option the CLI passes through (declared once, in `GATEWAY_OPTIONS`). */
function inherited<K extends keyof typeof LIBRARY>(key: K): NonNullable<(typeof LIBRARY)[K]['default']> {
  const value = LIBRARY[key].default;
  if (value === undefined) throw new Error(`GATEWAY_OPTIONS.${key} has no default`);
  return value as NonNullable<(typeof LIBRARY)[K]['default']>;
}
const UPGRADE_RATE_LIMIT = inherited('upgradeRateLimit');
const rateLabel = ({ limit, windowMs }: { limit: number; windowMs: number }) => `${limit}/${parse.formatDuration(windowMs)}`;
const bytes = (value: number) => ({ valueName: '<bytes>', defaultLabel: parse.formatBytes(value) });
const HISTORY = inherited('history');
const DEFAULT_HISTORY: GatewayConfig['history'] =
  HISTORY === false ? false : { maxEntries: HISTORY.maxEntries ?? 1, maxAgeMs: HISTORY.maxAgeMs ?? 1 };
/** The Redis engine's TTLs outlive a day: a revocation must outlast the longest-lived token. */
const LONG_DURATION = { max: 30 * 86_400_000 };
const REDIS = REDIS_ENGINE_DEFAULTS;

/** Every option of `authsocket serve`, declared once: parsing, `--help` and the README follow this table. */
export const OPTIONS: readonly OptionSpec[] = [
  option({
    key: 'configFile',
    flag: 'config',
    valueName: '<file>',
    defaultValue: undefined,
    defaultLabel: 'none',
    description: 'JSON file of options, keyed by the flags in camelCase (`ticketTtl`); flags and variables win over it',
    parse: parse.nonEmpty,
  }),
  option({
    key: 'port',
    flag: 'port',
    fallbackEnv: ['PORT'],
    valueName: '<port>',
    defaultValue: 8080,
    description: 'TCP port to listen on (0: any free port)',
    parse: parse.port,
  }),
  option({
    key: 'host',
    flag: 'host',
    valueName: '<host>',
    defaultValue: undefined,
    defaultLabel: 'every interface',
    description: 'interface to listen on, e.g. 127.0.0.1',
    parse: parse.nonEmpty,
  }),
  option({
    key: 'jwtSecret',
    flag: 'jwt-secret',
    valueName: '<secret>',
    defaultValue: undefined,
    defaultLabel: 'generated in --demo',
    description: 'HS256 secret, at least 32 bytes',
    secret: true,
    parse: parse.secret(32, 'bytes'),
  }),
  option({
    key: 'jwtPublicKey',
    flag: 'jwt-public-key',
    valueName: '<pem|path>',
    defaultValue: undefined,
    description: "PEM SPKI public key (`RS*`, `PS*`, `ES*`, `EdDSA`), inline or a file path",
    parse: parse.publicKey,
  }),
  option({
    key: 'jwksUrl',
    flag: 'jwks-url',
    valueName: '<url>',
    defaultValue: undefined,
    description: 'JWKS endpoint of your identity provider',
    parse: parse.url(['https:', 'http:']),
  }),
  option({
    key: 'jwksCacheMaxAgeMs',
    flag: 'jwks-cache-max-age',
    ...duration(JWKS_OPTIONS.jwksCacheMaxAgeMs.default),
    defaultValue: undefined,
    description: 'with --jwks-url: how long fetched keys are used before the JWKS is fetched again',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'jwksCooldownMs',
    flag: 'jwks-cooldown',
    ...duration(JWKS_OPTIONS.jwksCooldownMs.default),
    defaultValue: undefined,
    description: "with --jwks-url: least time between fetches; a token with an unknown `kid` (key rotation) waits at most this long",
    parse: parse.duration(),
  }),
  option({
    key: 'jwksTimeoutMs',
    flag: 'jwks-timeout',
    ...duration(JWKS_OPTIONS.jwksTimeoutMs.default),
    defaultValue: undefined,
    description: 'with --jwks-url: how long one JWKS fetch may take before it counts as failed',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'jwksStaleIfErrorMs',
    flag: 'jwks-stale-if-error',
    ...duration(JWKS_OPTIONS.jwksStaleIfErrorMs.default),
    defaultValue: undefined,
    description: "with --jwks-url: while the IdP is unreachable, keep cached keys this long past their max age (then 503 / `1011`, never 401 / `4401`)",
    parse: parse.duration(),
  }),
  option({
    key: 'issuer',
    flag: 'issuer',
    valueName: '<iss>',
    defaultValue: undefined,
    defaultLabel: 'not checked',
    description: 'required `iss` claim',
    parse: parse.nonEmpty,
  }),
  option({
    key: 'audience',
    flag: 'audience',
    valueName: '<aud>',
    defaultValue: undefined,
    defaultLabel: 'required with a public key or JWKS',
    description: "required `aud` claim. With --jwt-public-key or --jwks-url the gateway refuses to start without it: an identity provider signs tokens for all its clients, and one issued to another application would be accepted. `none` accepts any audience, on purpose",
    parse: parse.nonEmpty,
  }),
  option({
    key: 'jwtAlgorithms',
    flag: 'jwt-algorithms',
    valueName: '<alg,...>',
    defaultValue: undefined,
    defaultLabel: `${DEFAULT_JWT_ALGORITHMS.secret.join(',')} with a secret; those of ${DEFAULT_JWT_ALGORITHMS.key.join(',')} that fit the key`,
    description: "comma-separated JWS algorithms accepted (`none` never; `HS*` only with --jwt-secret)",
    parse: parse.algorithms,
  }),
  option({
    key: 'jwtClockToleranceSec',
    flag: 'jwt-clock-tolerance',
    ...duration(DEFAULT_CLOCK_TOLERANCE_SEC * 1_000),
    defaultValue: DEFAULT_CLOCK_TOLERANCE_SEC,
    description: 'leeway for `exp` and `nbf` between the identity provider\'s clock and this node\'s',
    parse: parse.seconds({ max: 3_600_000 }),
  }),
  option({
    key: 'jwtUserClaim',
    flag: 'jwt-user-claim',
    valueName: '<claim>',
    defaultValue: DEFAULT_USER_CLAIM,
    description: 'claim holding the user id (a non-empty string in every token)',
    parse: parse.nonEmpty,
  }),
  option({
    key: 'allowedOrigins',
    flag: 'allowed-origins',
    valueName: '<origins>',
    defaultValue: undefined,
    defaultLabel: 'any origin',
    description: 'comma-separated exact origins allowed to open a WebSocket (403 otherwise)',
    parse: parse.origins,
  }),
  option({
    key: 'ticketMode',
    flag: 'ticket-mode',
    valueName: '<off|optional|required>',
    defaultValue: inherited('ticket'),
    description: "whether upgrades take a ticket from `POST /auth/ticket`",
    parse: parse.oneOf(['off', 'optional', 'required']),
  }),
  option({
    key: 'ticketTtlMs',
    flag: 'ticket-ttl',
    ...duration(inherited('ticketTtlMs')),
    defaultValue: inherited('ticketTtlMs'),
    description: 'ticket lifetime',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'ticketReuse',
    flag: 'ticket-reuse',
    type: 'boolean',
    valueName: '',
    defaultValue: inherited('ticketReuse'),
    description: 'let a ticket be redeemed again within its TTL (default: single use)',
    parse: parse.boolean,
  }),
  option({
    key: 'requireAuthMessage',
    flag: 'require-auth-message',
    type: 'boolean',
    valueName: '',
    defaultValue: inherited('requireAuthMessage'),
    description: 'two-layer mode: even a ticket-authenticated socket must send `auth` with the same user; needs --ticket-mode required',
    parse: parse.boolean,
  }),
  option({
    key: 'handshakeToken',
    flag: 'handshake-token',
    type: 'boolean',
    valueName: '',
    defaultValue: inherited('handshakeToken'),
    description: 'accept a JWT at the handshake (`token.<jwt>` subprotocol or `?token=`); off by default because URLs get logged',
    parse: parse.boolean,
  }),
  option({
    key: 'perMessageAuth',
    flag: 'per-message-auth',
    type: 'boolean',
    valueName: '',
    defaultValue: inherited('perMessageAuth'),
    description: 'every `message`, `publish` and `rpc` must carry a `token` (else `4401`), verified through a bounded cache',
    parse: parse.boolean,
  }),
  option({
    key: 'verificationCacheSize',
    flag: 'verification-cache-size',
    valueName: '<entries>',
    defaultValue: inherited('verificationCacheSize'),
    description: 'entries in the per-message verification cache (--per-message-auth)',
    parse: parse.positiveInteger,
  }),
  option({
    key: 'expiryPolicy',
    flag: 'expiry-policy',
    valueName: '<reauth|close|ignore>',
    defaultValue: inherited('expiryPolicy'),
    description: "what happens when a connection's token expires",
    parse: parse.oneOf(['reauth', 'close', 'ignore']),
  }),
  option({
    key: 'reauthWindowMs',
    flag: 'reauth-window',
    ...duration(inherited('reauthWindowMs')),
    defaultValue: inherited('reauthWindowMs'),
    description: 'reauth policy: ask for a fresh token this long before `exp`',
    parse: parse.duration(),
  }),
  option({
    key: 'reauthGraceMs',
    flag: 'reauth-grace',
    ...duration(inherited('reauthGraceMs')),
    defaultValue: inherited('reauthGraceMs'),
    description: 'reauth policy: hold messages this long after `exp`, then close 4419',
    parse: parse.duration(),
  }),
  option({
    key: 'maxHeldMessages',
    flag: 'max-held-messages',
    valueName: '<n>',
    defaultValue: inherited('maxHeldMessages'),
    description: 'reauth policy: frames held for one connection awaiting reauth; one more closes it `4008`',
    parse: parse.positiveInteger,
  }),
  option({
    key: 'authTimeoutMs',
    flag: 'auth-timeout',
    ...duration(inherited('authTimeoutMs')),
    defaultValue: inherited('authTimeoutMs'),
    description: 'how long a socket may stay unauthenticated before it is closed 4408',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'closeOnLogout',
    flag: 'close-on-logout',
    type: 'boolean',
    valueName: '',
    defaultValue: inherited('closeOnLogout'),
    description: 'on `logout`, close the socket with 1000 instead of keeping it open for a new `auth`',
    parse: parse.boolean,
  }),
  option({
    key: 'maxConnectionsPerUser',
    flag: 'max-connections-per-user',
    valueName: '<n>',
    defaultValue: inherited('maxConnectionsPerUser'),
    description: "authenticated connections one user may hold on this node; one more closes `4409` (backoff)",
    parse: parse.positiveInteger,
  }),
  option({
    key: 'upgradeRateLimit',
    flag: 'upgrade-rate-limit',
    valueName: '<n/duration|off>',
    defaultValue: undefined,
    defaultLabel: UPGRADE_RATE_LIMIT === false ? 'off' : `${UPGRADE_RATE_LIMIT.limit}/${parse.formatDuration(UPGRADE_RATE_LIMIT.windowMs)}`,
    description: "WebSocket upgrades per client address (429 beyond); behind a load balancer every client has its address: raise it or say `off`",
    parse: parse.rateLimit,
  }),
  option({
    key: 'maxPayload',
    flag: 'max-payload',
    ...bytes(inherited('maxPayload')),
    defaultValue: inherited('maxPayload'),
    description: 'largest accepted frame (`1009` beyond); bytes, or with KiB / MiB',
    parse: parse.bytes,
  }),
  option({
    key: 'maxBufferedBytes',
    flag: 'max-buffered-bytes',
    ...bytes(inherited('maxBufferedBytes')),
    defaultValue: inherited('maxBufferedBytes'),
    description: 'outbound bytes buffered for one connection before it is closed as a slow consumer (`4008`)',
    parse: parse.bytes,
  }),
  option({
    key: 'messageRateLimit',
    flag: 'message-rate-limit',
    valueName: '<n/duration>',
    defaultValue: inherited('messageRateLimit'),
    defaultLabel: rateLabel(inherited('messageRateLimit')),
    description: 'frames per connection; beyond: `4429`',
    parse: parse.rate,
  }),
  option({
    key: 'authRateLimit',
    flag: 'auth-rate-limit',
    valueName: '<n/duration>',
    defaultValue: inherited('authRateLimit'),
    defaultLabel: rateLabel(inherited('authRateLimit')),
    description: '`auth` frames per connection; beyond: `4429`',
    parse: parse.rate,
  }),
  option({
    key: 'heartbeatIntervalMs',
    flag: 'heartbeat-interval',
    ...duration(inherited('heartbeatIntervalMs')),
    defaultValue: inherited('heartbeatIntervalMs'),
    description: 'ping interval; a peer that did not answer the previous ping is terminated (0: no heartbeat)',
    parse: parse.duration(),
  }),
  option({
    key: 'history',
    flag: 'history',
    valueName: '<entries/age|off>',
    defaultValue: DEFAULT_HISTORY,
    defaultLabel: DEFAULT_HISTORY === false ? 'off' : `${DEFAULT_HISTORY.maxEntries}/${parse.formatDuration(DEFAULT_HISTORY.maxAgeMs)}`,
    description: 'per-stream history for resume: every push and topic publish is kept, at most this many entries this long (in Redis with a Redis target); `off`: none, frames carry no offsets',
    parse: parse.history,
  }),
  option({
    key: 'subscribeTopics',
    flag: 'subscribe-topics',
    valueName: '<prefixes>',
    defaultValue: undefined,
    defaultLabel: '`*` (any topic); `chat:` in --demo',
    description: "topic prefixes clients may subscribe to: comma-separated, `*` for any, `-` for none",
    parse: parse.topicPrefixes,
  }),
  option({
    key: 'publishTopics',
    flag: 'publish-topics',
    valueName: '<prefixes>',
    defaultValue: undefined,
    defaultLabel: '`-` (none: only backends publish, through `/api`)',
    description: "topic prefixes clients may publish on: comma-separated, `*` for any, `-` for none",
    parse: parse.topicPrefixes,
  }),
  option({
    key: 'permissions',
    flag: 'permission',
    valueName: '<pattern=actions[ if claim=value,...]>',
    defaultValue: undefined,
    defaultLabel: 'none',
    description:
      "a topic permission from the token, repeatable (`;` between rules in the variable): `user:{sub}:*=subscribe,presence`, `chat:*=publish if role=admin`; `*` only at the end, `{claim}` a claim of the token. Given (or --permissions-claim), the rules decide instead of --subscribe-topics/--publish-topics, which then only add rules when set",
    multiple: true,
    parse: parse.permissionRule,
  }),
  option({
    key: 'permissionsClaim',
    flag: 'permissions-claim',
    valueName: '<claim>',
    defaultValue: undefined,
    defaultLabel: 'none',
    description: "a JWT claim holding the token's own topic patterns: an array (subscribe and presence) or `{subscribe, publish, presence}` of arrays",
    parse: parse.claimName,
  }),
  option({
    key: 'subscribeClaim',
    flag: 'subscribe-claim',
    valueName: '<claim>',
    defaultValue: undefined,
    defaultLabel: 'none',
    description: 'a JWT claim holding topics the connection joins at connect (an array of topics)',
    parse: parse.claimName,
  }),
  option({
    key: 'subscriptionTokenClaim',
    flag: 'subscription-token-claim',
    valueName: '<claim|off>',
    defaultValue: inherited('subscriptionTokenClaim'),
    description: "the claim naming a subscription token's one topic (`subscribe {topic, token}`); a token carrying it is never taken as a connection token; `off`: subscription tokens are refused",
    parse: parse.claimNameOrOff,
  }),
  option({
    key: 'presence',
    flag: 'presence',
    type: 'boolean',
    valueName: '',
    defaultValue: false,
    description: 'presence: who is subscribed to each topic (`presence` frame, `GET /api/topics/:topic/presence`); off by default, it costs a store write per subscribe',
    parse: parse.boolean,
  }),
  option({
    key: 'presenceTopics',
    flag: 'presence-topics',
    valueName: '<topics>',
    defaultValue: undefined,
    defaultLabel: 'every topic',
    description: 'with --presence: the topics that have it, comma-separated exact names or prefixes ending in `*` (`chat:*,lobby`)',
    parse: parse.presenceTopics,
  }),
  option({
    key: 'presenceInfoClaim',
    flag: 'presence-info-claim',
    valueName: '<claim>',
    defaultValue: undefined,
    defaultLabel: 'none',
    description: "with --presence: the JWT claim shown to others as each member's `info` (e.g. `name`)",
    parse: parse.claimName,
  }),
  option({
    key: 'presenceMaxMembers',
    flag: 'presence-max-members',
    valueName: '<n>',
    defaultValue: undefined,
    defaultLabel: 'no cap',
    description: 'with --presence: the most members one topic may hold; a subscribe beyond is refused `limit_exceeded`',
    parse: parse.positiveInteger,
  }),
  option({
    key: 'presenceJoinLeave',
    flag: 'presence-join-leave',
    type: 'boolean',
    valueName: '',
    defaultValue: false,
    description: 'with --presence: send `join` / `leave` frames to the subscribers of a topic when a connection joins or leaves it',
    parse: parse.boolean,
  }),
  option({
    key: 'wsPath',
    flag: 'ws-path',
    valueName: '<path>',
    defaultValue: '/ws',
    description: 'path WebSocket upgrades are served on',
    parse: parse.urlPath,
  }),
  option({
    key: 'redisUrl',
    flag: 'redis-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'in memory',
    description: "Redis for tickets, revocations, history and fan-out across nodes (`@authsocket/redis`); without it everything is in this process's memory",
    parse: parse.url(['redis:', 'rediss:'], { hideValue: true }),
  }),
  option({
    key: 'redisClusterNodes',
    flag: 'redis-cluster-nodes',
    valueName: '<host:port,...>',
    defaultValue: undefined,
    description: "seed nodes of a Redis (or Valkey) Cluster, instead of --redis-url",
    parse: parse.hostPorts,
  }),
  option({
    key: 'redisSentinels',
    flag: 'redis-sentinels',
    valueName: '<host:port,...>',
    defaultValue: undefined,
    description: 'Redis Sentinels that know the master, instead of --redis-url',
    parse: parse.hostPorts,
  }),
  option({
    key: 'redisSentinelName',
    flag: 'redis-sentinel-name',
    valueName: '<name>',
    defaultValue: 'mymaster',
    description: 'name of the master the sentinels monitor',
    parse: parse.nonEmpty,
  }),
  option({
    key: 'redisPassword',
    flag: 'redis-password',
    valueName: '<password>',
    defaultValue: undefined,
    defaultLabel: 'none, or the one in --redis-url',
    description: "`AUTH` password of the Redis servers (not of the sentinels), for any Redis target",
    secret: true,
    parse: parse.nonEmpty,
  }),
  option({
    key: 'redisKeyPrefix',
    flag: 'redis-key-prefix',
    valueName: '<prefix>',
    defaultValue: REDIS.keyPrefix,
    description: 'with a Redis target: prefix of every key and channel (no `{` or `}`); deployments sharing a Redis need different ones',
    parse: parse.keyPrefix,
  }),
  option({
    key: 'redisShards',
    flag: 'redis-shards',
    valueName: '<n>',
    defaultValue: REDIS.shards,
    description: 'with a Redis target: shard channels (and Cluster hash-tag slots) streams are spread over; the same on every node',
    parse: parse.positiveInteger,
  }),
  option({
    key: 'redisCommandTimeoutMs',
    flag: 'redis-command-timeout',
    ...duration(REDIS.commandTimeoutMs),
    defaultValue: REDIS.commandTimeoutMs,
    description: 'with a Redis target: bound on any one Redis command (then the operation fails as unavailable)',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'redisConnectTimeoutMs',
    flag: 'redis-connect-timeout',
    ...duration(REDIS.connectTimeoutMs),
    defaultValue: REDIS.connectTimeoutMs,
    description: 'with a Redis target: bound on one connection attempt',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'redisMaxReconnectDelayMs',
    flag: 'redis-max-reconnect-delay',
    ...duration(REDIS.maxReconnectDelayMs),
    defaultValue: REDIS.maxReconnectDelayMs,
    description: 'with a Redis target: longest wait between reconnection attempts (exponential with jitter up to it)',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'redisStreamTtlMs',
    flag: 'redis-stream-ttl',
    ...duration(REDIS.streamTtlMs),
    defaultValue: REDIS.streamTtlMs,
    description: 'with a Redis target: how long an idle stream keeps its epoch and offset (a resume from before gets `recovered: false`); at least the --history age',
    parse: parse.duration({ min: 1, ...LONG_DURATION }),
  }),
  option({
    key: 'redisRevocationTtlMs',
    flag: 'redis-revocation-ttl',
    ...duration(REDIS.revocationTtlMs),
    defaultValue: REDIS.revocationTtlMs,
    description: 'with a Redis target: how long a revocation is remembered; at least the longest lifetime of the tokens you accept',
    parse: parse.duration({ min: 1, ...LONG_DURATION }),
  }),
  option({
    key: 'redisLivenessIntervalMs',
    flag: 'redis-liveness-interval',
    ...duration(REDIS.livenessIntervalMs),
    defaultValue: REDIS.livenessIntervalMs,
    description: 'with a Redis target: PING period on every Redis connection',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'redisLivenessTimeoutMs',
    flag: 'redis-liveness-timeout',
    ...duration(REDIS.livenessTimeoutMs),
    defaultValue: REDIS.livenessTimeoutMs,
    description: 'with a Redis target: a connection whose PING gets no reply within this is dropped and re-established',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'redisTrackedStreams',
    flag: 'redis-tracked-streams',
    valueName: '<n>',
    defaultValue: REDIS.trackedStreams,
    description: 'with a Redis target: streams whose last position each node remembers, to deliver from history what it missed while its subscriber was down (0: off)',
    parse: parse.nonNegativeInteger,
  }),
  option({
    key: 'redisIdempotencyWindowMs',
    flag: 'redis-idempotency-window',
    ...duration(REDIS.idempotencyWindowMs),
    defaultValue: REDIS.idempotencyWindowMs,
    description: 'with a Redis target: how long a publish\'s `Idempotency-Key` is remembered',
    parse: parse.duration({ min: 1, ...LONG_DURATION }),
  }),
  option({
    key: 'redisLeaseMs',
    flag: 'redis-lease',
    ...duration(REDIS.leaseMs),
    defaultValue: REDIS.leaseMs,
    description: "with a Redis target: how long a node's connection registry and presence entries outlive its last renewal (a node killed -9 is gone from every list within this); at least 300 ms",
    parse: parse.duration({ min: 300 }),
  }),
  option({
    key: 'registry',
    flag: 'registry',
    valueName: '<on|off>',
    defaultValue: true,
    defaultLabel: 'on',
    description: 'the connection registry (who is connected, on which node, until when) in Redis, with a Redis target: `GET /api/users/:user/connections` lists every node\'s; `off`: this node\'s only, nothing written. In memory the node\'s own connections are the registry either way',
    parse: parse.boolean,
  }),
  option({
    key: 'trustProxy',
    flag: 'trust-proxy',
    valueName: '<hops|cidr,...>',
    defaultValue: undefined,
    defaultLabel: '0 (no proxy trusted)',
    description: "proxies whose `X-Forwarded-For` / `Forwarded` name the client address for rate limits and logs: a number of hops (`1`: the balancer in front), or the proxies' addresses/CIDRs (`10.0.0.0/8,192.0.2.7`)",
    parse: parse.trustProxy,
  }),
  option({
    key: 'nodeId',
    flag: 'node-id',
    valueName: '<id>',
    defaultValue: DEFAULT_NODE_ID,
    defaultLabel: '<hostname>-<pid>',
    description: "name of this node in `/healthz`, every log line, the metrics and the Redis engine (letters, digits, `.` `_` `:` `-`)",
    parse: parse.nonEmpty,
  }),
  option({
    key: 'apiKey',
    flag: 'api-key',
    valueName: '<key>',
    defaultValue: undefined,
    defaultLabel: 'API off; generated in --demo',
    description: "bearer key of the `/api` endpoints, at least 16 characters",
    secret: true,
    parse: parse.secret(16, 'characters'),
  }),
  option({
    key: 'proxyConnectUrl',
    flag: 'proxy-connect-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy ([`@authsocket/proxy`](../proxy/README.md)): POST after the credential is verified; the backend refuses (a close code 4000–4999) or accepts with `data` for `auth_ok` and `topics` to join",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxyRefreshUrl',
    flag: 'proxy-refresh-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy: the same on an in-band reauth; a backend that cannot answer keeps the verified token",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxySubscribeUrl',
    flag: 'proxy-subscribe-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy, per subscribe: allow (with `data` for the ack) or deny (an `error` frame, not a close); replaces --subscribe-topics",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxyPublishUrl',
    flag: 'proxy-publish-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy, per client publish: allow, deny or replace the payload; replaces --publish-topics",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxyRpcUrl',
    flag: 'proxy-rpc-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy, per `rpc` frame: the backend's `result` is the client's answer",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxyDisconnectUrl',
    flag: 'proxy-disconnect-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy: a connection closed, with its code and how long it lived (best effort: a crash reports nothing)",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxySecret',
    flag: 'proxy-secret',
    valueName: '<secret>',
    defaultValue: undefined,
    defaultLabel: 'required with a --proxy-*-url',
    description: "HMAC-SHA256 key the proxy signs each request with (`authsocket-signature`), at least 32 bytes",
    secret: true,
    parse: parse.secret(32, 'bytes'),
  }),
  option({
    key: 'proxyTimeoutMs',
    flag: 'proxy-timeout',
    valueName: '<duration>',
    defaultValue: undefined,
    defaultLabel: '3s',
    description: "how long the proxy waits for a backend; then `unavailable` (`temporary`), and for a connect a `1013` close",
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'proxyForwardClaims',
    flag: 'proxy-forward-claims',
    valueName: '<claims>',
    defaultValue: undefined,
    defaultLabel: 'none (user and exp only)',
    description: 'comma-separated JWT claims the proxy forwards in its identity envelope',
    parse: parse.claimNames,
  }),
  option({
    key: 'forwardStream',
    flag: 'forward-stream',
    valueName: '<stream>',
    defaultValue: undefined,
    defaultLabel: 'not forwarded',
    description: "the queue path ([`@authsocket/worker`](../worker/README.md)): every client `message` is appended, signed, to this Redis Stream (e.g. `authsocket:inbox`) for a fleet of workers; the `ack` is sent once Redis committed the entry, with `data: {entry: \"<id>\"}`; Redis down: `unavailable` (`temporary`), no ack. Needs --redis-url and --forward-secret; owns `onMessage` (the HTTP proxy's other events still work beside it)",
    parse: parse.nonEmpty,
  }),
  option({
    key: 'forwardSecret',
    flag: 'forward-secret',
    valueName: '<secret>',
    defaultValue: undefined,
    defaultLabel: 'required with --forward-stream',
    description: "HMAC-SHA256 key each entry's `sig` is made with, at least 32 bytes; the workers' `verify.secret`",
    secret: true,
    parse: parse.secret(32, 'bytes'),
  }),
  option({
    key: 'forwardMaxLength',
    flag: 'forward-max-length',
    valueName: '<entries>',
    defaultValue: undefined,
    defaultLabel: '100000',
    description: "about how many entries the stream keeps (`XADD MAXLEN ~`), oldest trimmed first, processed or not",
    parse: parse.positiveInteger,
  }),
  option({
    key: 'forwardPartitions',
    flag: 'forward-partitions',
    valueName: '<n>',
    defaultValue: undefined,
    defaultLabel: '1 (one stream)',
    description: "spread messages over `<stream>:0` … `<stream>:<n-1>` by a hash of the connection id (the ack then also names the `stream`), for workers in ordered mode (`partitions: {count, owned}`), each owning some, that keep one connection's messages in order",
    parse: parse.positiveInteger,
  }),
  option({
    key: 'forwardClaims',
    flag: 'forward-claims',
    valueName: '<claims>',
    defaultValue: undefined,
    defaultLabel: 'none (user and exp only)',
    description: 'comma-separated JWT claims copied into each entry\'s identity envelope',
    parse: parse.claimNames,
  }),
  option({
    key: 'logLevel',
    flag: 'log-level',
    valueName: `<${LOG_LEVELS.join('|')}>`,
    defaultValue: 'info',
    description: 'level of the JSON logs on stdout',
    parse: parse.oneOf(LOG_LEVELS),
  }),
  option({
    key: 'acceptNoSubprotocol',
    flag: 'accept-no-subprotocol',
    type: 'boolean',
    valueName: '',
    defaultValue: inherited('acceptNoSubprotocol'),
    description: "take an upgrade that offers no subprotocol at all as `authsocket.v1`, for third-party clients that cannot set one (PROTOCOL.md, \"Third-party clients\"); it then authenticates with its first `auth` frame or `?ticket=`",
    parse: parse.boolean,
  }),
  option({
    key: 'drainDelayMs',
    flag: 'drain-delay',
    ...duration(0),
    defaultValue: 0,
    description: 'on SIGTERM, how long /healthz answers 503 closing while connections are still served, before they are closed 1001 (give the balancer its check interval × fall)',
    parse: parse.duration(),
  }),
  option({
    key: 'shutdownTimeoutMs',
    flag: 'shutdown-timeout',
    ...duration(30_000),
    defaultValue: 30_000,
    description: 'on SIGTERM, the deadline for the whole shutdown (drain included); past it the process exits 1 anyway',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'demo',
    flag: 'demo',
    type: 'boolean',
    valueName: '',
    defaultValue: false,
    description: "demo identity (`POST /auth/login`), `chat:*` topics, generated secrets (`true`/`false` in the variable)",
    parse: parse.boolean,
  }),
  option({
    key: 'staticDir',
    flag: 'static-dir',
    valueName: '<dir>',
    defaultValue: undefined,
    defaultLabel: 'the built demo app in --demo',
    description: "directory of static assets served at `/`",
    parse: parse.directory,
  }),
];

export function optionFor(key: ConfigKey): OptionSpec {
  const spec = OPTIONS.find((candidate) => candidate.key === key);
  if (!spec) throw new Error(`no option declared for ${key}`);
  return spec;
}

/** Where the CLI gets each of `createGateway`'s options: config keys, or why it cannot be a CLI option. */
export type LibraryMapping = readonly ConfigKey[] | { readonly excluded: string };

/**
 * Every option of `createGateway` (`GATEWAY_OPTIONS`): the CLI options that feed it, or why none can.
 * A key added to the library's table fails the typecheck here until it is mapped or excluded.
 */
export const GATEWAY_OPTION_SOURCES: { readonly [K in keyof typeof LIBRARY]: LibraryMapping } = {
  jwt: ['jwtSecret', 'jwtPublicKey', 'jwksUrl', 'jwksCacheMaxAgeMs', 'jwksCooldownMs', 'jwksTimeoutMs', 'jwksStaleIfErrorMs', 'issuer', 'audience', 'jwtAlgorithms', 'jwtClockToleranceSec', 'jwtUserClaim'],
  ticket: ['ticketMode'],
  ticketTtlMs: ['ticketTtlMs'],
  ticketReuse: ['ticketReuse'],
  requireAuthMessage: ['requireAuthMessage'],
  acceptNoSubprotocol: ['acceptNoSubprotocol'],
  handshakeToken: ['handshakeToken'],
  perMessageAuth: ['perMessageAuth'],
  verificationCacheSize: ['verificationCacheSize'],
  authTimeoutMs: ['authTimeoutMs'],
  expiryPolicy: ['expiryPolicy'],
  reauthWindowMs: ['reauthWindowMs'],
  reauthGraceMs: ['reauthGraceMs'],
  maxHeldMessages: ['maxHeldMessages'],
  closeOnLogout: ['closeOnLogout'],
  path: ['wsPath'],
  allowedOrigins: ['allowedOrigins'],
  maxPayload: ['maxPayload'],
  maxConnectionsPerUser: ['maxConnectionsPerUser'],
  maxBufferedBytes: ['maxBufferedBytes'],
  messageRateLimit: ['messageRateLimit'],
  authRateLimit: ['authRateLimit'],
  upgradeRateLimit: ['upgradeRateLimit'],
  trustProxy: ['trustProxy'],
  nodeId: ['nodeId'],
  heartbeatIntervalMs: ['heartbeatIntervalMs'],
  history: ['history'],
  presence: ['presence', 'presenceTopics', 'presenceInfoClaim', 'presenceMaxMembers', 'presenceJoinLeave'],
  broker: { excluded: 'an object: the Redis engine of --redis-url / --redis-cluster-nodes / --redis-sentinels, else in memory' },
  ticketStore: { excluded: 'an object: the Redis engine with a Redis target, else in memory' },
  revocationStore: { excluded: 'an object: the Redis engine with a Redis target, else in memory' },
  connectionStore: ['registry'],
  presenceStore: { excluded: 'an object: the Redis engine with a Redis target, else in memory' },
  onMessage: { excluded: 'a callback: the CLI\'s are the queue path (--forward-stream) and the demo chat' },
  handler: { excluded: 'an object of callbacks: the CLI\'s is the HTTP event proxy (--proxy-*-url)' },
  authorize: { excluded: 'a callback: the CLI builds it from --subscribe-topics and --publish-topics' },
  permissions: ['permissions', 'subscribeTopics', 'publishTopics'],
  permissionsClaim: ['permissionsClaim'],
  subscribeClaim: ['subscribeClaim'],
  subscriptionTokenClaim: ['subscriptionTokenClaim'],
  logger: { excluded: 'an object: the CLI\'s JSON logger (--log-level)' },
  clock: { excluded: 'an object: the system clock' },
};

/** Every sub-option of `jwt`, likewise (a key added to `JwtOptions` fails the typecheck here). */
export const JWT_OPTION_SOURCES: { readonly [K in keyof Required<JwtOptions>]: LibraryMapping } = {
  secret: ['jwtSecret'],
  publicKey: ['jwtPublicKey'],
  jwksUrl: ['jwksUrl'],
  jwksCacheMaxAgeMs: ['jwksCacheMaxAgeMs'],
  jwksCooldownMs: ['jwksCooldownMs'],
  jwksTimeoutMs: ['jwksTimeoutMs'],
  jwksStaleIfErrorMs: ['jwksStaleIfErrorMs'],
  algorithms: ['jwtAlgorithms'],
  issuer: ['issuer'],
  audience: ['audience'],
  clockToleranceSec: ['jwtClockToleranceSec'],
  userClaim: ['jwtUserClaim'],
};

/** Every option of `createRedisEngine`, likewise. */
export const REDIS_ENGINE_OPTION_SOURCES: { readonly [K in keyof Required<RedisEngineOptions>]: LibraryMapping } = {
  keyPrefix: ['redisKeyPrefix'],
  history: ['history'],
  streamTtlMs: ['redisStreamTtlMs'],
  revocationTtlMs: ['redisRevocationTtlMs'],
  shards: ['redisShards'],
  commandTimeoutMs: ['redisCommandTimeoutMs'],
  connectTimeoutMs: ['redisConnectTimeoutMs'],
  trackedStreams: ['redisTrackedStreams'],
  nodeId: ['nodeId'],
  idempotencyWindowMs: ['redisIdempotencyWindowMs'],
  livenessIntervalMs: ['redisLivenessIntervalMs'],
  livenessTimeoutMs: ['redisLivenessTimeoutMs'],
  maxReconnectDelayMs: ['redisMaxReconnectDelayMs'],
  leaseMs: ['redisLeaseMs'],
  redis: {
    excluded: 'ioredis connection options (an object): --redis-password sets AUTH, a rediss:// URL TLS; anything else needs the library',
  },
  logger: { excluded: 'an object: the CLI\'s JSON logger (--log-level)' },
};
