import { hostname } from 'node:os';
import { type ExpiryPolicy, GATEWAY_OPTIONS as LIBRARY, JWKS_OPTIONS, type TicketMode, type TrustProxy } from '@authsocket/server';
import * as parse from './parsers.js';
import type { Parser } from './parsers.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The gateway process's configuration, as `loadConfig` resolves it from flags, environment and defaults. */
export interface GatewayConfig {
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
  /** Exact `Origin` values allowed to open a WebSocket; undefined: any. */
  readonly allowedOrigins: readonly string[] | undefined;
  readonly ticketMode: TicketMode;
  readonly ticketTtlMs: number;
  readonly expiryPolicy: ExpiryPolicy;
  readonly reauthWindowMs: number;
  readonly reauthGraceMs: number;
  readonly authTimeoutMs: number;
  /** Authenticated connections one user may hold on this node. */
  readonly maxConnectionsPerUser: number;
  /** Upgrade attempts per client address, or false; undefined keeps the library's default (300/10s). */
  readonly upgradeRateLimit: { limit: number; windowMs: number } | false | undefined;
  /** Topic prefixes clients may subscribe to (`''` matches all), or undefined for the mode's default. */
  readonly subscribeTopics: readonly string[] | undefined;
  /** Topic prefixes clients may publish on, or undefined for the mode's default (none). */
  readonly publishTopics: readonly string[] | undefined;
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
}

type Definition<K extends ConfigKey> = Omit<OptionSpec<K>, 'env' | 'fallbackEnv' | 'type' | 'defaultLabel' | 'secret'> &
  Partial<Pick<OptionSpec<K>, 'fallbackEnv' | 'type' | 'defaultLabel' | 'secret'>>;

export const envName = (flag: string): string => `AUTHSOCKET_${flag.toUpperCase().replaceAll('-', '_')}`;

function option<K extends ConfigKey>(definition: Definition<K>): OptionSpec {
  const spec: OptionSpec<K> = {
    env: envName(definition.flag),
    fallbackEnv: [],
    type: 'string',
    secret: false,
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

/** Every option of `authsocket serve`, declared once: parsing, `--help` and the README follow this table. */
export const OPTIONS: readonly OptionSpec[] = [
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
    description: 'PEM SPKI public key (RS*, PS*, ES*, EdDSA), inline or a file path',
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
    description: 'with --jwks-url: least time between fetches; a token with an unknown kid (key rotation) waits at most this long',
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
    description: 'with --jwks-url: while the IdP is unreachable, keep cached keys this long past their max age (then 503 / 1011)',
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
    description: "required `aud` claim; required with --jwt-public-key and --jwks-url ('none': accept any audience, on purpose)",
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
    description: 'whether upgrades take a ticket from POST /auth/ticket',
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
    key: 'authTimeoutMs',
    flag: 'auth-timeout',
    ...duration(inherited('authTimeoutMs')),
    defaultValue: inherited('authTimeoutMs'),
    description: 'how long a socket may stay unauthenticated before it is closed 4408',
    parse: parse.duration({ min: 1 }),
  }),
  option({
    key: 'maxConnectionsPerUser',
    flag: 'max-connections-per-user',
    valueName: '<n>',
    defaultValue: inherited('maxConnectionsPerUser'),
    description: 'authenticated connections one user may hold on this node; one more closes 4409',
    parse: parse.positiveInteger,
  }),
  option({
    key: 'upgradeRateLimit',
    flag: 'upgrade-rate-limit',
    valueName: '<n/duration|off>',
    defaultValue: undefined,
    defaultLabel: UPGRADE_RATE_LIMIT === false ? 'off' : `${UPGRADE_RATE_LIMIT.limit}/${parse.formatDuration(UPGRADE_RATE_LIMIT.windowMs)}`,
    description: 'WebSocket upgrades per client address (429 beyond); behind a load balancer every client has its address: raise it or say off',
    parse: parse.rateLimit,
  }),
  option({
    key: 'subscribeTopics',
    flag: 'subscribe-topics',
    valueName: '<prefixes>',
    defaultValue: undefined,
    defaultLabel: "'*' (any topic); 'chat:' in --demo",
    description: "topic prefixes clients may subscribe to: comma-separated, '*' for any, '-' for none",
    parse: parse.topicPrefixes,
  }),
  option({
    key: 'publishTopics',
    flag: 'publish-topics',
    valueName: '<prefixes>',
    defaultValue: undefined,
    defaultLabel: "'-' (none: only backends publish, through /api)",
    description: "topic prefixes clients may publish on: comma-separated, '*' for any, '-' for none",
    parse: parse.topicPrefixes,
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
    description: 'Redis for tickets, revocations, history and fan-out across nodes',
    parse: parse.url(['redis:', 'rediss:'], { hideValue: true }),
  }),
  option({
    key: 'redisClusterNodes',
    flag: 'redis-cluster-nodes',
    valueName: '<host:port,...>',
    defaultValue: undefined,
    description: 'seed nodes of a Redis Cluster, instead of --redis-url',
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
    description: 'AUTH password of the Redis servers (not of the sentinels), for any Redis target',
    secret: true,
    parse: parse.nonEmpty,
  }),
  option({
    key: 'trustProxy',
    flag: 'trust-proxy',
    valueName: '<hops|cidr,...>',
    defaultValue: undefined,
    defaultLabel: '0 (no proxy trusted)',
    description: 'proxies whose X-Forwarded-For / Forwarded name the client address for rate limits and logs: a number of hops, or proxy addresses/CIDRs',
    parse: parse.trustProxy,
  }),
  option({
    key: 'nodeId',
    flag: 'node-id',
    valueName: '<id>',
    defaultValue: DEFAULT_NODE_ID,
    defaultLabel: '<hostname>-<pid>',
    description: 'name of this node in /healthz, logs and metrics (letters, digits, . _ : -)',
    parse: parse.nonEmpty,
  }),
  option({
    key: 'apiKey',
    flag: 'api-key',
    valueName: '<key>',
    defaultValue: undefined,
    defaultLabel: 'API off; generated in --demo',
    description: 'bearer key of the /api endpoints, at least 16 characters',
    secret: true,
    parse: parse.secret(16, 'characters'),
  }),
  option({
    key: 'proxyConnectUrl',
    flag: 'proxy-connect-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy: POST after the credential is verified, refuse (a close code) or accept with data and topics",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxyRefreshUrl',
    flag: 'proxy-refresh-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy: POST on an in-band reauth, the same contract as connect",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxySubscribeUrl',
    flag: 'proxy-subscribe-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy: POST per subscribe, allow or deny",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxyPublishUrl',
    flag: 'proxy-publish-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy: POST per client publish, allow, deny or replace the payload",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxyRpcUrl',
    flag: 'proxy-rpc-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy: POST per rpc frame, the answer is the client's result",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxyDisconnectUrl',
    flag: 'proxy-disconnect-url',
    valueName: '<url>',
    defaultValue: undefined,
    defaultLabel: 'not proxied',
    description: "HTTP event proxy: POST a connection closed (best effort)",
    parse: parse.url(['http:', 'https:']),
  }),
  option({
    key: 'proxySecret',
    flag: 'proxy-secret',
    valueName: '<secret>',
    defaultValue: undefined,
    defaultLabel: 'required with a --proxy-*-url',
    description: 'HMAC-SHA256 key the proxy signs each request with (authsocket-signature), at least 32 bytes',
    secret: true,
    parse: parse.secret(32, 'bytes'),
  }),
  option({
    key: 'proxyTimeoutMs',
    flag: 'proxy-timeout',
    valueName: '<duration>',
    defaultValue: undefined,
    defaultLabel: '3s',
    description: 'how long the proxy waits for a backend (then: unavailable, and for connect a 1013 close)',
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
    description: 'queue path: append every client message to this Redis Stream (needs --redis-url and --forward-secret); the ack waits for the entry and carries its id',
    parse: parse.nonEmpty,
  }),
  option({
    key: 'forwardSecret',
    flag: 'forward-secret',
    valueName: '<secret>',
    defaultValue: undefined,
    defaultLabel: 'required with --forward-stream',
    description: 'HMAC-SHA256 key each stream entry is signed with (its sig field), at least 32 bytes',
    secret: true,
    parse: parse.secret(32, 'bytes'),
  }),
  option({
    key: 'forwardMaxLength',
    flag: 'forward-max-length',
    valueName: '<entries>',
    defaultValue: undefined,
    defaultLabel: '100000',
    description: 'about how many entries the stream keeps (XADD MAXLEN ~), oldest trimmed first',
    parse: parse.positiveInteger,
  }),
  option({
    key: 'forwardPartitions',
    flag: 'forward-partitions',
    valueName: '<n>',
    defaultValue: undefined,
    defaultLabel: '1 (one stream)',
    description: 'spread messages over <stream>:0 … <stream>:<n-1> by a hash of the connection id, for workers that each own some partitions and keep per-connection order',
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
    description: 'take an upgrade that offers no subprotocol as authsocket.v1 (third-party clients that cannot set one)',
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
    description: 'demo identity (POST /auth/login), chat:* topics, generated secrets',
    parse: parse.boolean,
  }),
  option({
    key: 'staticDir',
    flag: 'static-dir',
    valueName: '<dir>',
    defaultValue: undefined,
    defaultLabel: 'the built demo app in --demo',
    description: 'directory of static assets served at /',
    parse: parse.directory,
  }),
];

export function optionFor(key: ConfigKey): OptionSpec {
  const spec = OPTIONS.find((candidate) => candidate.key === key);
  if (!spec) throw new Error(`no option declared for ${key}`);
  return spec;
}
