import { parseArgs } from 'node:util';
import { ConfigError } from '@authsocket/server';
import { type ConfigKey, type GatewayConfig, OPTIONS, type OptionSpec, optionFor } from './options.js';
import { ValueError } from './parsers.js';

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

export interface LoadedConfig {
  readonly config: GatewayConfig;
  /** Things worth a log line that do not stop the start (unknown `AUTHSOCKET_*` variables). */
  readonly warnings: readonly string[];
}

const ENV_PREFIX = 'AUTHSOCKET_';

/**
 * Resolves the configuration of `authsocket serve` from its arguments (after `serve`) and the
 * environment: a flag wins over `AUTHSOCKET_<NAME>`, which wins over the default. Throws
 * `InvalidOptionError` naming the option at fault.
 */
export function loadConfig(args: readonly string[], env: Environment): LoadedConfig {
  const flags = readFlags(args);
  const values: Partial<Record<ConfigKey, unknown>> = {};
  for (const spec of OPTIONS) values[spec.key] = resolve(spec, flags[spec.flag], env);
  const config = values as unknown as GatewayConfig;
  checkKeySource(config);
  checkRedisTarget(config);
  checkProxy(config);
  checkForward(config);

  const warnings: string[] = [];
  const known = new Set(OPTIONS.map((spec) => spec.env));
  for (const name of Object.keys(env)) {
    if (name.startsWith(ENV_PREFIX) && !known.has(name)) warnings.push(`unknown environment variable ${name} ignored`);
  }
  return { config, warnings };
}

function readFlags(args: readonly string[]): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(OPTIONS.map((spec) => [spec.flag, { type: spec.type }])),
    });
    return values as Record<string, string | boolean | undefined>;
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

function resolve(spec: OptionSpec, flag: string | boolean | undefined, env: Environment): unknown {
  if (typeof flag === 'boolean') return flag;
  if (flag !== undefined) return parseValue(spec, flag, spec.env);
  for (const name of [spec.env, ...spec.fallbackEnv]) {
    const value = env[name];
    // An empty variable (`FOO=` in a compose file) means unset.
    if (value !== undefined && value !== '') return parseValue(spec, value, name);
  }
  return spec.defaultValue;
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

/** `--audience none`: the operator's explicit choice not to check `aud`. */
export const AUDIENCE_NONE = 'none';

const REDIS_TARGETS = ['redisUrl', 'redisClusterNodes', 'redisSentinels'] as const;

/** At most one Redis target; a Redis password only with one. */
function checkRedisTarget(config: GatewayConfig): void {
  const [first, second] = REDIS_TARGETS.filter((key) => config[key] !== undefined).map(optionFor);
  if (first && second) {
    throw InvalidOptionError.of(second, `conflicts with --${first.flag}: set exactly one Redis target`);
  }
  if (!first && config.redisPassword !== undefined) {
    const names = REDIS_TARGETS.map(optionFor).map((spec) => `--${spec.flag}`);
    throw InvalidOptionError.of(optionFor('redisPassword'), `needs a Redis target: ${names.join(', ')}`);
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
  'jwt.algorithms': 'jwtPublicKey',
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
