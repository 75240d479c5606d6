import { createHmac, webcrypto } from 'node:crypto';

/** One HS256 secret, issuer and audience for every target, so the auth work is the same everywhere. */
export const SECRET = 'authsocket-bench-hs256-secret-0123456789abcdef';
/**
 * The secret imported once as a CryptoKey, as authsocket does: handed the raw bytes, jose imports a
 * fresh key on every verification, and the peers would pay that where authsocket does not.
 */
export const SECRET_KEY = await webcrypto.subtle.importKey(
  'raw',
  new TextEncoder().encode(SECRET),
  { name: 'HMAC', hash: 'SHA-256' },
  false,
  ['verify'],
);
export const ISSUER = 'https://id.bench.local';
/** The HTTP event proxy's signing key (at least 32 bytes), shared by the gateway and the rpc backend. */
export const PROXY_SECRET = 'authsocket-bench-proxy-secret-0123456789abcdef';
/** The queue path's entry-signing key (at least 32 bytes), shared by the forwarder and the workers. */
export const FORWARD_SECRET = 'authsocket-bench-forward-secret-0123456789abcdef';
/** The stream and consumer group of the queue scenario (one fresh redis-server per run). */
export const QUEUE_STREAM = 'bench:inbox';
export const QUEUE_GROUP = 'bench-workers';
export const AUDIENCE = 'bench';
/** The backend API's key of the `gateway` target (`Authorization: Bearer ...`). */
export const GATEWAY_API_KEY = 'authsocket-bench-api-key-0123456789abcdef';
export const HOST = '127.0.0.1';

/**
 * Microseconds on the machine's monotonic clock (`CLOCK_MONOTONIC` behind `process.hrtime`), which
 * every process on the box shares: a server stamps a frame, the load generator subtracts.
 */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const b64 = (value: string | Buffer): string => Buffer.from(value).toString('base64url');
const HEADER = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

/**
 * Mints an HS256 JWT with node:crypto directly (jose's SignJWT is async and slower; the load
 * generator mints tens of thousands before it measures anything).
 */
export function mintToken(user: string, expiresAtMs: number, issuedAtMs = Date.now()): string {
  const claims = {
    sub: user,
    iss: ISSUER,
    aud: AUDIENCE,
    iat: Math.floor(issuedAtMs / 1000),
    exp: Math.floor(expiresAtMs / 1000),
  };
  const body = `${HEADER}.${b64(JSON.stringify(claims))}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

/** An application payload whose JSON is exactly `size` bytes: `{"s":seq,"t":stamp,"p":"xxx"}`. */
export interface AppData {
  s: number;
  t: number;
  u?: number;
  p: string;
}

export function appData(seq: number, stamp: number, size: number, user?: number): AppData {
  const data: AppData = user === undefined ? { s: seq, t: stamp, p: '' } : { s: seq, t: stamp, u: user, p: '' };
  const bare = JSON.stringify(data).length;
  data.p = 'x'.repeat(Math.max(0, size - bare));
  return data;
}

/** Linear-interpolation-free percentile (nearest rank) of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export interface Distribution {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** p50, p99 and max of `values` (any unit), in the unit given. */
export function distribution(values: number[]): Distribution {
  const sorted = Float64Array.from(values).sort();
  const arr = Array.from(sorted);
  return { n: arr.length, p50: percentile(arr, 50), p99: percentile(arr, 99), max: arr.at(-1) ?? Number.NaN };
}

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1 ? (finite[mid] as number) : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
}

/** What the server process reports over its control channel. */
export interface ServerStats {
  /** `process.cpuUsage()` user + system, in µs. */
  cpuUs: number;
  /** Of which system (the kernel, on this process's behalf), in µs. */
  systemUs: number;
  rss: number;
  heapUsed: number;
  /** V8 heap committed (used + free space in its pages). */
  heapTotal: number;
  external: number;
  connections: number;
}

/** Server variants. `ws` is the baseline every ratio is taken against. */
export type Target =
  | 'ws'
  /** The ws server with its fan-out writing one prebuilt frame straight to each TCP socket: Node's floor. */
  | 'ws-floor'
  | 'authsocket'
  | 'authsocket-ticket'
  | 'authsocket-pma'
  | 'authsocket-nohistory'
  /** The gateway without the connection registry (`connectionStore: false`): what the registry costs. */
  | 'authsocket-noregistry'
  /** The gateway with `handler: createHttpProxy(...)`: each rpc a signed POST to a backend process. */
  | 'authsocket-proxy'
  /**
   * The gateway on the Redis engine (`@authsocket/redis` broker, ticket and revocation stores), its
   * in-process `onMessage` replying through the broker (`gateway.sendToConnection`): the reply path
   * a worker takes, without the queue.
   */
  | 'authsocket-redis'
  /** `authsocket-redis` without the connection registry in Redis (`connectionStore: false`). */
  | 'authsocket-redis-noregistry'
  /** The queue path: `createStreamForwarder` on the Redis engine, and 1 or 3 worker processes replying. */
  | 'queue-1'
  | 'queue-3'
  /** authsocket loaded from BENCH_AUTHSOCKET_EXPERIMENT: a proposed change, measured side by side. */
  | 'authsocket-exp'
  /** The standalone gateway (`startGateway`: Express app, request log, metrics, `/api`), in memory, log level info. */
  | 'gateway'
  | 'socketio';

/**
 * The variant a target behaves as: `authsocket-exp` takes the options of BENCH_EXP_AS (default
 * `authsocket`), so an experiment can stand in for any authsocket variant.
 */
export function behaviour(target: Target): Target {
  return target === 'authsocket-exp' ? ((process.env.BENCH_EXP_AS as Target | undefined) ?? 'authsocket') : target;
}

/** How a load-generator client speaks to a target. */
export type Dialect = 'ws' | 'authsocket' | 'socketio';

export function dialectOf(target: Target): Dialect {
  if (target === 'ws' || target === 'ws-floor') return 'ws';
  if (target === 'socketio') return 'socketio';
  return 'authsocket';
}

/** Configuration handed to a server process (environment variable BENCH_SERVER). */
export interface ServerConfig {
  target: Target;
  /** Expiry churn: warn this long before `exp` (`reauth_required {reason: 'expiring'}`). */
  reauthWindowMs?: number;
  /** `authsocket-proxy`: the backend's rpc URL (a separate process the orchestrator started). */
  rpcUrl?: string;
  /**
   * In-process `onMessage` answers `context.reply({echo: data})` instead of echoing `data` itself
   * (the queue scenario: the reply the workers send, so every target writes the same frame).
   */
  echoReply?: boolean;
  /** `authsocket-redis`, `queue-*`: the redis-server the orchestrator started for this run. */
  redisUrl?: string;
}

/** Worker processes a target runs beside its gateway (the queue path), 0 for the rest. */
export function workersOf(target: Target): number {
  const match = /^queue-(\d+)$/.exec(behaviour(target));
  return match ? Number(match[1]) : 0;
}

/** Whether a target needs a redis-server of its own. */
export function usesRedis(target: Target): boolean {
  return behaviour(target) === 'authsocket-redis' || behaviour(target) === 'authsocket-redis-noregistry' || workersOf(target) > 0;
}

/** What a queue worker process reports: its CPU and memory, and its entries so far. */
export interface WorkerStats extends ServerStats {
  processed: number;
  /** Handler failures (the entry stays pending): 0 in a clean run. */
  failed: number;
  /** Entries dead-lettered (refused signature, out of attempts): 0 in a clean run. */
  dead: number;
}

/** Configuration handed to a queue worker process (environment variable BENCH_WORKER). */
export interface WorkerConfig {
  redisUrl: string;
  consumer: string;
}

/** Configuration handed to a load-generator process (environment variable BENCH_LOAD). */
export interface LoadConfig {
  scenario: ScenarioName;
  target: Target;
  port: number;
  controlPort: number;
  /** The rpc backend's control port (`authsocket-proxy`), for its CPU. */
  backendControlPort?: number;
  /** The queue workers' control ports, for their CPU and counts. */
  workerControlPorts?: number[];
  /** The redis-server's pid, for its CPU (`/proc/<pid>/stat`). */
  redisPid?: number;
  params: Record<string, number>;
}

export type ScenarioName =
  | 'connect'
  | 'idle'
  | 'broadcast'
  | 'topic'
  | 'push'
  | 'echo'
  | 'churn'
  | 'history'
  | 'rpc'
  | 'queue'
  | 'publish-api'
  | 'scale';

/** Flat numeric metrics of one run; names carry their unit. */
export type Metrics = Record<string, number>;
