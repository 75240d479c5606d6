import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '@authsocket/server';
import { type ConfigKey, envName, type GatewayConfig, OPTIONS, type OptionSpec, optionFor } from './options.js';
import { formatDuration, ValueError } from './parsers.js';

export type Environment = Readonly<Record<string, string | undefined>>;

/** Configuration that cannot start a gateway. `option` is the flag at fault, without dashes. */
export class InvalidOptionError extends Error {
  override readonly name = 'InvalidOptionError';
  readonly code = 'ERR_INVALID_OPTION';
  readonly option: string;

  constructor(option: string, message: string) {
    super(message);
    this.option = option;
  }

  /** `invalid option --reauth-window (AUTHSOCKET_REAUTH_WINDOW): <detail>` */
  static of(spec: OptionSpec, detail: string, env: string = spec.env): InvalidOptionError {
    return new InvalidOptionError(spec.flag, `invalid option --${spec.flag} (${env}): ${detail}`);
  }
}

/** Where an option's value came from. */
export type Source = 'flag' | 'env' | 'file' | 'default';

export interface LoadedConfig {
  readonly config: GatewayConfig;
  /** Where each value came from. */
  readonly sources: Readonly<Record<ConfigKey, Source>>;
  /** Things worth a log line that do not stop the start (unknown `AUTHSOCKET_*` variables). */
  readonly warnings: readonly string[];
}

const ENV_PREFIX = 'AUTHSOCKET_';

/**
 * Resolves the configuration of `authsocket serve` from its arguments (after `serve`), the
 * environment and the `--config` file: a flag wins over `AUTHSOCKET_<NAME>`, which wins over the
 * file's key, which wins over the default. Throws `InvalidOptionError` naming the option at fault.
 */
export function loadConfig(args: readonly string[], env: Environment): LoadedConfig {
  const flags = readFlags(args);
  const warnings: string[] = [];
  const configSpec = optionFor('configFile');
  const configFile = resolve(configSpec, flags[configSpec.flag], env, undefined);
  const file = configFile.value === undefined ? undefined : readConfigFile(configFile.value as string);
  const values: Partial<Record<ConfigKey, unknown>> = {};
  const sources: Partial<Record<ConfigKey, Source>> = {};
  for (const spec of OPTIONS) {
    const { value, source } = spec === configSpec ? configFile : resolve(spec, flags[spec.flag], env, file);
    values[spec.key] = value;
    sources[spec.key] = source;
  }
  const config = values as unknown as GatewayConfig;
  const resolved = sources as Record<ConfigKey, Source>;
  checkKeySource(config);
  checkTickets(config);
  checkRedisTarget(config, resolved);
  checkProxy(config);
  checkForward(config);
  checkPresence(config);

  const known = new Set(OPTIONS.map((spec) => spec.env));
  for (const name of Object.keys(env)) {
    if (name.startsWith(ENV_PREFIX) && !known.has(name)) warnings.push(`unknown environment variable ${name} ignored`);
  }
  if (file) warnings.push(...fileWarnings(file));
  return { config, sources: resolved, warnings };
}

/** A `--config` file, read and checked against the options table. */
interface ConfigFile {
  readonly path: string;
  /** Raw values by file key. */
  readonly values: ReadonlyMap<string, unknown>;
  readonly mode: number;
}

const BY_FILE_KEY = new Map(OPTIONS.map((spec) => [spec.fileKey, spec]));

function fileError(path: string, detail: string): InvalidOptionError {
  const spec = optionFor('configFile');
  return new InvalidOptionError(spec.flag, `invalid config file ${path}: ${detail}`);
}

function readConfigFile(path: string): ConfigFile {
  let text: string;
  let mode: number;
  try {
    text = readFileSync(path, 'utf8');
    mode = statSync(path).mode;
  } catch (error) {
    throw fileError(path, `cannot read it (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw fileError(path, jsonErrorDetail(text, error));
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw fileError(path, 'expected a JSON object of options, like {"ticketTtl": "30s"}');
  }
  const values = new Map(Object.entries(parsed));
  for (const key of values.keys()) {
    const spec = BY_FILE_KEY.get(key);
    if (spec?.key === 'configFile') throw fileError(path, `"${key}" cannot be set in a config file`);
    if (spec) continue;
    // Typos must not silently do nothing: say which key, and what it may have meant.
    const folded = key.replace(/^-+/, '').replaceAll('-', '').replaceAll('_', '').toLowerCase();
    const meant = OPTIONS.find(
      (candidate) => candidate.key === key || candidate.fileKey.toLowerCase() === folded || envName(candidate.flag).replaceAll('_', '').toLowerCase() === folded,
    );
    const hint = meant ? `; did you mean "${meant.fileKey}"?` : ' (keys are the flags in camelCase, see authsocket serve --help)';
    throw fileError(path, `unknown key ${JSON.stringify(key)}${hint}`);
  }
  return { path, values, mode };
}

/** Where JSON.parse gave up, as line and column (Node 20's messages do not always say). */
function jsonErrorDetail(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const stated = /at position (\d+)/.exec(message)?.[1];
  const at = stated === undefined ? jsonErrorOffset(text) : Number(stated);
  const before = text.slice(0, at).split('\n');
  const found = at >= text.length ? 'unexpected end of file' : `unexpected ${JSON.stringify(text.charAt(at))}`;
  return `not valid JSON at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}: ${found}`;
}

/** The offset of the first character a JSON parser would refuse in `text` (which JSON.parse refused). */
function jsonErrorOffset(text: string): number {
  let at = 0;
  const space = () => {
    while (/[ \t\r\n]/.test(text.charAt(at))) at += 1;
  };
  const fail = (): never => {
    throw at;
  };
  const literal = (pattern: RegExp) => {
    const match = pattern.exec(text.slice(at));
    if (!match) fail();
    at += (match as RegExpExecArray)[0].length;
  };
  // A JSON string: no raw control characters (checked by code point, not in the pattern).
  const STRING = new RegExp(`^"(?:[^"\\\\${String.fromCharCode(0)}-${String.fromCharCode(0x1f)}]|\\\\.)*"`);
  const value = (): void => {
    space();
    const char = text.charAt(at);
    if (char === '{' || char === '[') {
      const close = char === '{' ? '}' : ']';
      at += 1;
      space();
      if (text.charAt(at) === close) {
        at += 1;
        return;
      }
      for (;;) {
        if (close === '}') {
          space();
          if (text.charAt(at) !== '"') fail();
          literal(STRING);
          space();
          if (text.charAt(at) !== ':') fail();
          at += 1;
        }
        value();
        space();
        if (text.charAt(at) === ',') at += 1;
        else if (text.charAt(at) === close) {
          at += 1;
          return;
        } else fail();
      }
    }
    if (char === '"') return literal(STRING);
    if (/[-0-9]/.test(char)) return literal(/^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?/);
    return literal(/^(?:true|false|null)/);
  };
  try {
    value();
    space();
    return at;
  } catch (offset) {
    return typeof offset === 'number' ? offset : 0;
  }
}

/** A file holding secrets should be readable by its owner only. */
function fileWarnings(file: ConfigFile): string[] {
  const secrets = OPTIONS.filter((spec) => spec.secret && file.values.has(spec.fileKey)).map((spec) => spec.fileKey);
  if (secrets.length === 0 || (file.mode & 0o077) === 0) return [];
  const mode = (file.mode & 0o777).toString(8);
  return [`config file ${file.path} holds secrets (${secrets.join(', ')}) and is readable by others (mode ${mode}): chmod 600 it`];
}

/**
 * A file value as the string its flag would take: JSON numbers and booleans as written, arrays
 * comma-joined, `false` for an option that is not on/off as `off`.
 */
function fileRaw(spec: OptionSpec, value: unknown, source: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return spec.type === 'boolean' ? String(value) : value ? 'on' : 'off';
  if (Array.isArray(value) && value.every((entry) => typeof entry === 'string' || typeof entry === 'number')) {
    return value.join(',');
  }
  throw InvalidOptionError.of(spec, 'expected a string, a number, a boolean or an array of strings', source);
}

function readFlags(args: readonly string[]): Record<string, string | boolean | string[] | undefined> {
  try {
    const { values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(OPTIONS.map((spec) => [spec.flag, { type: spec.type, multiple: spec.multiple }])),
    });
    return values as Record<string, string | boolean | string[] | undefined>;
  } catch (error) {
    throw argumentError(error);
  }
}

/** node:util's messages are written for programmers; these name the option the way the docs do. */
function argumentError(error: unknown): InvalidOptionError {
  const { code, message } = error as { code?: string; message?: string };
  const named = /'(-[^' ]+)/.exec(message ?? '')?.[1] ?? '';
  const name = named.replace(/^-+/, '').split('=', 1)[0] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new InvalidOptionError(name, `unknown option ${named}: see authsocket serve --help`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const spec = OPTIONS.find((candidate) => candidate.flag === name);
      if (spec?.type === 'boolean') return InvalidOptionError.of(spec, 'takes no value on the command line');
      if (spec) return InvalidOptionError.of(spec, `expected a value after --${spec.flag}`);
      break;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const stray = /'([^']*)'/.exec(message ?? '')?.[1] ?? '';
      return new InvalidOptionError('', `unexpected argument ${JSON.stringify(stray)}: options are --<name> <value>`);
    }
    default:
      break;
  }
  return new InvalidOptionError(name, message ?? 'invalid arguments');
}

function resolve(
  spec: OptionSpec,
  flag: string | boolean | string[] | undefined,
  env: Environment,
  file: ConfigFile | undefined,
): { value: unknown; source: Source } {
  if (typeof flag === 'boolean') return { value: flag, source: 'flag' };
  if (Array.isArray(flag)) return { value: parseEach(spec, flag, spec.env), source: 'flag' };
  if (flag !== undefined) return { value: parseValue(spec, flag, spec.env), source: 'flag' };
  for (const name of [spec.env, ...spec.fallbackEnv]) {
    const value = env[name];
    // An empty variable (`FOO=` in a compose file) means unset.
    if (value === undefined || value === '') continue;
    return { value: spec.multiple ? parseEach(spec, value.split(';'), name) : parseValue(spec, value, name), source: 'env' };
  }
  if (file?.values.has(spec.fileKey)) {
    const where = `${spec.fileKey} in ${file.path}`;
    const raw = file.values.get(spec.fileKey);
    if (spec.multiple && Array.isArray(raw)) return { value: parseEach(spec, raw.map((item) => fileRaw(spec, item, where)), where), source: 'file' };
    return { value: parseValue(spec, fileRaw(spec, raw, where), where), source: 'file' };
  }
  return { value: spec.defaultValue, source: 'default' };
}

/** A repeatable option: each raw value parsed on its own (to an array), the arrays joined in order. */
function parseEach(spec: OptionSpec, raws: readonly string[], env: string): unknown[] {
  const values = raws.filter((raw) => raw.trim() !== '').flatMap((raw) => parseValue(spec, raw, env) as unknown[]);
  if (values.length === 0) throw InvalidOptionError.of(spec, 'expected at least one value', env);
  return values;
}

function parseValue(spec: OptionSpec, raw: string, env: string): unknown {
  try {
    return spec.parse(raw);
  } catch (error) {
    if (error instanceof ValueError) throw InvalidOptionError.of(spec, error.message, env);
    throw error;
  }
}

const KEY_SOURCES = ['jwtSecret', 'jwtPublicKey', 'jwksUrl'] as const;

/** Exactly one JWT key source; in demo mode at most one, and only a secret (demo login signs with it). */
function checkKeySource(config: GatewayConfig): void {
  const given = KEY_SOURCES.filter((key) => config[key] !== undefined).map(optionFor);
  const [first, second] = given;
  if (first && second) {
    throw InvalidOptionError.of(second, `conflicts with --${first.flag}: set exactly one JWT key source`);
  }
  if (config.demo && first && first.key !== 'jwtSecret') {
    throw InvalidOptionError.of(first, '--demo signs its own tokens, so it needs --jwt-secret (or none: it generates one)');
  }
  if (!first && !config.demo) {
    const names = KEY_SOURCES.map(optionFor).map((spec) => `--${spec.flag} (${spec.env})`);
    throw new InvalidOptionError(
      'jwt-secret',
      `missing option: a JWT key is required: set ${names[0]}, ${names[1]} or ${names[2]}, or run with --demo`,
    );
  }
  // An identity provider's keys sign tokens for every client it serves: without an audience, a token
  // issued to another application of the same IdP would open a socket here.
  if (first && first.key !== 'jwtSecret' && config.audience === undefined) {
    throw InvalidOptionError.of(
      optionFor('audience'),
      `is required with --${first.flag}: without it a token your identity provider issued to any of its other clients is accepted; set it to this app's audience, or to ${AUDIENCE_NONE} to accept every audience on purpose`,
    );
  }
}

/** Two-layer mode asks for the `auth` frame after a ticket: every upgrade must bring one. */
function checkTickets(config: GatewayConfig): void {
  if (config.requireAuthMessage && config.ticketMode !== 'required') {
    throw InvalidOptionError.of(optionFor('requireAuthMessage'), 'needs --ticket-mode required (two-layer mode: a ticket, then the auth message)');
  }
}

/** `--audience none`: the operator's explicit choice not to check `aud`. */
export const AUDIENCE_NONE = 'none';

const REDIS_TARGETS = ['redisUrl', 'redisClusterNodes', 'redisSentinels'] as const;

/** The Redis engine's options (`createRedisEngine`), which mean something only with a Redis target. */
export const REDIS_ENGINE_KEYS = [
  'redisKeyPrefix',
  'redisShards',
  'redisCommandTimeoutMs',
  'redisConnectTimeoutMs',
  'redisMaxReconnectDelayMs',
  'redisStreamTtlMs',
  'redisRevocationTtlMs',
  'redisLivenessIntervalMs',
  'redisLivenessTimeoutMs',
  'redisTrackedStreams',
  'redisIdempotencyWindowMs',
  'redisLeaseMs',
] as const satisfies readonly ConfigKey[];

/** At most one Redis target; a Redis password and the engine's options only with one. */
function checkRedisTarget(config: GatewayConfig, sources: Readonly<Record<ConfigKey, Source>>): void {
  const [first, second] = REDIS_TARGETS.filter((key) => config[key] !== undefined).map(optionFor);
  if (first && second) {
    throw InvalidOptionError.of(second, `conflicts with --${first.flag}: set exactly one Redis target`);
  }
  if (!first) {
    const stray = (['redisPassword', ...REDIS_ENGINE_KEYS] as const).find((key) => sources[key] !== 'default');
    if (stray) {
      const names = REDIS_TARGETS.map(optionFor).map((spec) => `--${spec.flag}`);
      throw InvalidOptionError.of(optionFor(stray), `needs a Redis target: ${names.join(', ')}`);
    }
    return;
  }
  if (config.history !== false && config.redisStreamTtlMs < config.history.maxAgeMs) {
    throw InvalidOptionError.of(optionFor('redisStreamTtlMs'), `must be at least the --history age (${formatDuration(config.history.maxAgeMs)})`);
  }
}

/** The event URLs of the HTTP proxy, by event. */
export const PROXY_URLS = {
  connect: 'proxyConnectUrl',
  refresh: 'proxyRefreshUrl',
  subscribe: 'proxySubscribeUrl',
  publish: 'proxyPublishUrl',
  rpc: 'proxyRpcUrl',
  disconnect: 'proxyDisconnectUrl',
} as const satisfies Record<string, ConfigKey>;

/** A proxied event needs the signing key; the proxy's other options need an event to proxy. */
function checkProxy(config: GatewayConfig): void {
  const urls = Object.values(PROXY_URLS).filter((key) => config[key] !== undefined);
  const [first] = urls.map(optionFor);
  if (first && config.proxySecret === undefined) {
    throw InvalidOptionError.of(optionFor('proxySecret'), `is required with --${first.flag}: the backend tells the gateway's requests by their signature`);
  }
  if (!first) {
    const stray = (['proxySecret', 'proxyTimeoutMs', 'proxyForwardClaims'] as const).find((key) => config[key] !== undefined);
    if (stray) throw InvalidOptionError.of(optionFor(stray), 'needs a --proxy-<event>-url to proxy');
  }
}

/** The queue path needs a Redis server and the signing key; its other options need the stream. */
function checkForward(config: GatewayConfig): void {
  if (config.forwardStream !== undefined) {
    if (config.redisUrl === undefined) {
      const other = config.redisClusterNodes !== undefined || config.redisSentinels !== undefined;
      throw InvalidOptionError.of(
        optionFor('forwardStream'),
        other ? 'needs --redis-url (Cluster and Sentinel are not supported by the queue path yet)' : 'needs --redis-url: the stream lives in the gateway\'s Redis',
      );
    }
    if (config.forwardSecret === undefined) {
      throw InvalidOptionError.of(optionFor('forwardSecret'), 'is required with --forward-stream: workers tell the gateway\'s entries by their signature');
    }
    return;
  }
  const stray = (['forwardSecret', 'forwardMaxLength', 'forwardPartitions', 'forwardClaims'] as const).find((key) => config[key] !== undefined);
  if (stray) throw InvalidOptionError.of(optionFor(stray), 'needs --forward-stream');
}

/** Presence's own options mean something only with --presence. */
function checkPresence(config: GatewayConfig): void {
  if (config.presence) return;
  const stray = (['presenceTopics', 'presenceInfoClaim', 'presenceMaxMembers', 'presenceJoinLeave'] as const).find(
    (key) => config[key] !== undefined && config[key] !== false,
  );
  if (stray) throw InvalidOptionError.of(optionFor(stray), 'needs --presence');
}

/** The configuration as it may be printed or logged: secrets masked, a Redis URL without its password. */
export function printableConfig(config: GatewayConfig): Record<string, unknown> {
  const printable: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    const value = config[spec.key];
    printable[spec.key] = spec.secret && value !== undefined ? MASK : value;
  }
  if (config.redisUrl !== undefined) printable.redisUrl = withoutPassword(config.redisUrl);
  return printable;
}

const MASK = '[redacted]';

function withoutPassword(raw: string): string {
  const url = new URL(raw);
  // Brackets would be percent-encoded in a URL.
  if (url.password !== '') url.password = '***';
  return url.href;
}

/** The server library's option names, for its `ConfigError`s, mapped to the flags that feed them. */
const SERVER_OPTIONS: Readonly<Record<string, ConfigKey>> = {
  jwt: 'jwtSecret',
  'jwt.secret': 'jwtSecret',
  'jwt.publicKey': 'jwtPublicKey',
  'jwt.algorithms': 'jwtAlgorithms',
  'jwt.clockToleranceSec': 'jwtClockToleranceSec',
  'jwt.userClaim': 'jwtUserClaim',
  'jwt.jwksUrl': 'jwksUrl',
  'jwt.jwksCacheMaxAgeMs': 'jwksCacheMaxAgeMs',
  'jwt.jwksCooldownMs': 'jwksCooldownMs',
  'jwt.jwksTimeoutMs': 'jwksTimeoutMs',
  'jwt.jwksStaleIfErrorMs': 'jwksStaleIfErrorMs',
  'jwt.issuer': 'issuer',
  'jwt.audience': 'audience',
  ticket: 'ticketMode',
  ticketTtlMs: 'ticketTtlMs',
  expiryPolicy: 'expiryPolicy',
  reauthWindowMs: 'reauthWindowMs',
  reauthGraceMs: 'reauthGraceMs',
  authTimeoutMs: 'authTimeoutMs',
  path: 'wsPath',
  allowedOrigins: 'allowedOrigins',
  trustProxy: 'trustProxy',
  nodeId: 'nodeId',
  ticketReuse: 'ticketReuse',
  requireAuthMessage: 'requireAuthMessage',
  handshakeToken: 'handshakeToken',
  perMessageAuth: 'perMessageAuth',
  verificationCacheSize: 'verificationCacheSize',
  maxHeldMessages: 'maxHeldMessages',
  closeOnLogout: 'closeOnLogout',
  maxPayload: 'maxPayload',
  maxBufferedBytes: 'maxBufferedBytes',
  messageRateLimit: 'messageRateLimit',
  'messageRateLimit.limit': 'messageRateLimit',
  'messageRateLimit.windowMs': 'messageRateLimit',
  authRateLimit: 'authRateLimit',
  'authRateLimit.limit': 'authRateLimit',
  'authRateLimit.windowMs': 'authRateLimit',
  heartbeatIntervalMs: 'heartbeatIntervalMs',
  history: 'history',
  'history.maxEntries': 'history',
  'history.maxAgeMs': 'history',
  // The Redis engine's.
  keyPrefix: 'redisKeyPrefix',
  shards: 'redisShards',
  streamTtlMs: 'redisStreamTtlMs',
  revocationTtlMs: 'redisRevocationTtlMs',
  commandTimeoutMs: 'redisCommandTimeoutMs',
  connectTimeoutMs: 'redisConnectTimeoutMs',
  maxReconnectDelayMs: 'redisMaxReconnectDelayMs',
  livenessIntervalMs: 'redisLivenessIntervalMs',
  livenessTimeoutMs: 'redisLivenessTimeoutMs',
  trackedStreams: 'redisTrackedStreams',
  idempotencyWindowMs: 'redisIdempotencyWindowMs',
  leaseMs: 'redisLeaseMs',
};

/** Rewrites the server library's `ConfigError` (e.g. a too-short RSA key) in terms of this CLI's options. */
export function fromServerConfigError(error: unknown): unknown {
  if (!(error instanceof ConfigError)) return error;
  const key = SERVER_OPTIONS[error.option];
  if (key === undefined) return error;
  const prefix = `invalid option '${error.option}': `;
  const detail = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return InvalidOptionError.of(optionFor(key), detail);
}
