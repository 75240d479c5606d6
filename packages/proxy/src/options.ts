import { isPlainObject } from '@authsocket/protocol';
import { type Clock, ConfigError, type Logger, silentLogger, systemClock } from '@authsocket/server';

/** The events the proxy can forward, one URL each; `event` in the request body. */
export type ProxyEvent = 'connect' | 'refresh' | 'subscribe' | 'publish' | 'rpc' | 'disconnect';

export const PROXY_EVENTS: readonly ProxyEvent[] = ['connect', 'refresh', 'subscribe', 'publish', 'rpc', 'disconnect'];

/** One backend URL, with its own bounds (defaults: the proxy-wide `timeoutMs` and `maxConcurrency`). */
export interface EndpointOptions {
  /** `http://` or `https://`; no credentials (they would end up in logs: the signature authenticates the gateway). */
  url: string;
  timeoutMs?: number;
  maxConcurrency?: number;
}

/** A URL, or a URL with its own bounds. */
export type EndpointSpec = string | EndpointOptions;

export interface HttpProxyOptions {
  /** HMAC-SHA256 key for `authsocket-signature`, at least 32 bytes. Required. */
  secret: string;
  /** This gateway node, sent as `identity.node`. Required. */
  nodeId: string;
  /** POSTed before `auth_ok` on a first authentication: accept, refuse with a close code, or add data and topics. */
  connect?: EndpointSpec;
  /** POSTed on an in-band reauth (a fresh token): accept, or refuse with a close code. Retried once. */
  refresh?: EndpointSpec;
  /** POSTed for every topic a connection asks to join (unless a `subscribeByPrefix` entry matches). */
  subscribe?: EndpointSpec;
  /** POSTed for every client publish (unless a `publishByPrefix` entry matches): allow, deny, or replace the payload. */
  publish?: EndpointSpec;
  /** POSTed for every `rpc` frame: its `result` is the client's `result`. Without it, rpc answers `not_found`. */
  rpc?: EndpointSpec;
  /** POSTed, best effort, when an authenticated connection closes. Retried once; never awaited. */
  disconnect?: EndpointSpec;
  /** Per topic prefix: the longest matching prefix wins over `subscribe`. A topic nothing matches is refused. */
  subscribeByPrefix?: Readonly<Record<string, EndpointSpec>>;
  /** Per topic prefix: the longest matching prefix wins over `publish`. A topic nothing matches is refused. */
  publishByPrefix?: Readonly<Record<string, EndpointSpec>>;
  /** JWT claims copied into `identity.claims` (`sub` and `exp` are always sent as `user` and `exp`). Default none. */
  forwardClaims?: readonly string[];
  /** Per request, headers to the whole body, in ms. Default 3_000. */
  timeoutMs?: number;
  /** Requests in flight per endpoint; past it a request fails at once as `unavailable`. Default 256. */
  maxConcurrency?: number;
  /** Largest response body read; a larger one is cut off and counts as invalid. Default 65_536. */
  maxResponseBytes?: number;
  /** Per endpoint: after `failures` consecutive failures, fail at once for `cooldownMs`, then try one request. Default 5 and 1_000. */
  breaker?: { failures?: number; cooldownMs?: number };
  /** Delay before the one retry of `refresh` and `disconnect`, in ms. Default 100. */
  retryDelayMs?: number;
  /** pino-compatible logger. Default: silent. Never given a token, the secret or a body. */
  logger?: Logger;
  /** Time source for `identity.ts`, signatures and the breaker. Default: the system clock. */
  clock?: Clock;
}

export const PROXY_DEFAULTS = {
  timeoutMs: 3_000,
  maxConcurrency: 256,
  maxResponseBytes: 64 * 1024,
  breakerFailures: 5,
  breakerCooldownMs: 1_000,
  retryDelayMs: 100,
} as const;

/** The shortest HMAC key accepted, in bytes: SHA-256's output size. */
export const MIN_SECRET_BYTES = 32;

/** One endpoint after validation. `name` is how logs and errors refer to it: `subscribe`, `subscribeByPrefix['chat:']`. */
export interface ResolvedEndpoint {
  readonly event: ProxyEvent;
  readonly name: string;
  readonly url: URL;
  readonly timeoutMs: number;
  readonly maxConcurrency: number;
}

export interface ResolvedProxyOptions {
  readonly secret: string;
  readonly nodeId: string;
  readonly endpoints: Readonly<Partial<Record<ProxyEvent, ResolvedEndpoint>>>;
  /** Longest prefix first. */
  readonly subscribeByPrefix: readonly (readonly [string, ResolvedEndpoint])[];
  readonly publishByPrefix: readonly (readonly [string, ResolvedEndpoint])[];
  readonly forwardClaims: readonly string[];
  readonly maxResponseBytes: number;
  readonly breaker: { readonly failures: number; readonly cooldownMs: number };
  readonly retryDelayMs: number;
  readonly logger: Logger;
  readonly clock: Clock;
}

const OPTION_NAMES = new Set<string>([
  'secret',
  'nodeId',
  ...PROXY_EVENTS,
  'subscribeByPrefix',
  'publishByPrefix',
  'forwardClaims',
  'timeoutMs',
  'maxConcurrency',
  'maxResponseBytes',
  'breaker',
  'retryDelayMs',
  'logger',
  'clock',
]);
const ENDPOINT_NAMES = new Set(['url', 'timeoutMs', 'maxConcurrency']);
const BREAKER_NAMES = new Set(['failures', 'cooldownMs']);

function positive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(name, `expected a positive integer, got ${String(value)}`);
  }
  return value;
}

function nonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError(name, `expected a non-negative integer, got ${String(value)}`);
  }
  return value;
}

/** Unknown keys are typos (`subscibe`), which would otherwise switch an event off without a word. */
function knownKeys(name: string, value: Record<string, unknown>, known: ReadonlySet<string>): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new ConfigError(name === '' ? key : `${name}.${key}`, 'unknown option');
  }
}

function backendUrl(name: string, value: unknown): URL {
  if (typeof value !== 'string' || value === '') throw new ConfigError(name, 'expected an http:// or https:// URL');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(name, `not a URL: '${value.slice(0, 200)}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(name, `expected an http:// or https:// URL, got '${url.protocol}'`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(name, 'credentials in the URL would be logged; the backend verifies authsocket-signature instead');
  }
  if (url.hash !== '') throw new ConfigError(name, 'a URL sent to a backend has no #fragment');
  return url;
}

function endpoint(event: ProxyEvent, name: string, spec: unknown, timeoutMs: number, maxConcurrency: number): ResolvedEndpoint {
  if (typeof spec === 'string') return { event, name, url: backendUrl(name, spec), timeoutMs, maxConcurrency };
  if (!isPlainObject(spec)) throw new ConfigError(name, 'expected a URL or { url, timeoutMs?, maxConcurrency? }');
  knownKeys(name, spec, ENDPOINT_NAMES);
  return {
    event,
    name,
    url: backendUrl(`${name}.url`, spec.url),
    timeoutMs: spec.timeoutMs === undefined ? timeoutMs : positive(`${name}.timeoutMs`, spec.timeoutMs),
    maxConcurrency: spec.maxConcurrency === undefined ? maxConcurrency : positive(`${name}.maxConcurrency`, spec.maxConcurrency),
  };
}

function byPrefix(
  event: 'subscribe' | 'publish',
  name: string,
  value: unknown,
  timeoutMs: number,
  maxConcurrency: number,
): (readonly [string, ResolvedEndpoint])[] {
  if (value === undefined) return [];
  if (!isPlainObject(value)) throw new ConfigError(name, 'expected an object of topic prefix to URL');
  const entries = Object.entries(value).map(([prefix, spec]) => {
    const entry = `${name}['${prefix}']`;
    if (prefix === '') throw new ConfigError(entry, `an empty prefix matches every topic: use '${event}' for that`);
    return [prefix, endpoint(event, entry, spec, timeoutMs, maxConcurrency)] as const;
  });
  return entries.sort(([a], [b]) => b.length - a.length);
}

/** Applies the defaults once and rejects what cannot work, naming the option. */
export function resolveProxyOptions(options: HttpProxyOptions): ResolvedProxyOptions {
  if (!isPlainObject(options)) throw new ConfigError('options', 'expected an object');
  knownKeys('', options, OPTION_NAMES);
  const given = options as HttpProxyOptions;
  if (typeof given.secret !== 'string' || given.secret === '') throw new ConfigError('secret', 'is required');
  if (Buffer.byteLength(given.secret, 'utf8') < MIN_SECRET_BYTES) {
    throw new ConfigError('secret', `must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  if (typeof given.nodeId !== 'string' || given.nodeId === '') throw new ConfigError('nodeId', 'expected a non-empty string');
  const timeoutMs = given.timeoutMs === undefined ? PROXY_DEFAULTS.timeoutMs : positive('timeoutMs', given.timeoutMs);
  const maxConcurrency = given.maxConcurrency === undefined ? PROXY_DEFAULTS.maxConcurrency : positive('maxConcurrency', given.maxConcurrency);
  const endpoints: Partial<Record<ProxyEvent, ResolvedEndpoint>> = {};
  for (const event of PROXY_EVENTS) {
    const spec = given[event];
    if (spec !== undefined) endpoints[event] = endpoint(event, event, spec, timeoutMs, maxConcurrency);
  }
  const forwardClaims = given.forwardClaims ?? [];
  if (!Array.isArray(forwardClaims) || forwardClaims.some((claim) => typeof claim !== 'string' || claim === '')) {
    throw new ConfigError('forwardClaims', 'expected an array of claim names');
  }
  const breaker = given.breaker ?? {};
  if (!isPlainObject(breaker)) throw new ConfigError('breaker', 'expected { failures?, cooldownMs? }');
  knownKeys('breaker', breaker, BREAKER_NAMES);
  return {
    secret: given.secret,
    nodeId: given.nodeId,
    endpoints,
    subscribeByPrefix: byPrefix('subscribe', 'subscribeByPrefix', given.subscribeByPrefix, timeoutMs, maxConcurrency),
    publishByPrefix: byPrefix('publish', 'publishByPrefix', given.publishByPrefix, timeoutMs, maxConcurrency),
    forwardClaims: [...new Set(forwardClaims)],
    maxResponseBytes:
      given.maxResponseBytes === undefined ? PROXY_DEFAULTS.maxResponseBytes : positive('maxResponseBytes', given.maxResponseBytes),
    breaker: {
      failures: breaker.failures === undefined ? PROXY_DEFAULTS.breakerFailures : positive('breaker.failures', breaker.failures),
      cooldownMs:
        breaker.cooldownMs === undefined ? PROXY_DEFAULTS.breakerCooldownMs : positive('breaker.cooldownMs', breaker.cooldownMs),
    },
    retryDelayMs: given.retryDelayMs === undefined ? PROXY_DEFAULTS.retryDelayMs : nonNegative('retryDelayMs', given.retryDelayMs),
    logger: given.logger ?? silentLogger,
    clock: given.clock ?? systemClock,
  };
}
