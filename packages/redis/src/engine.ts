import { type BrokerStatus, ConfigError, DEFAULT_HISTORY, DEFAULT_IDEMPOTENCY_WINDOW_MS, type Logger, silentLogger } from '@authsocket/server';
import { backoff } from '@authsocket/protocol';
import { Cluster, type RedisOptions } from 'ioredis';
import { RedisBroker } from './broker.js';
import { connect } from './connections.js';
import { RedisConnectionStore } from './connection-store.js';
import { Keys } from './keys.js';
import { NodeLease } from './lease.js';
import { RedisPresenceStore } from './presence-store.js';
import { RedisRevocationStore } from './revocation-store.js';
import { Subscriber } from './subscriber.js';
import { parseTarget, type RedisTarget } from './target.js';
import { RedisTicketStore } from './ticket-store.js';

export interface RedisEngineOptions {
  /** Prefix of every key and channel; no `{` or `}`. Default `'authsocket:'`. */
  keyPrefix?: string;
  /**
   * History bounds per stream, as the gateway's `history` option: publications kept (exact `MAXLEN`)
   * and their maximum age. Default `{ maxEntries: 1_000, maxAgeMs: 300_000 }`.
   */
  history?: { maxEntries?: number; maxAgeMs?: number };
  /**
   * How long an idle stream keeps its epoch and offset, in ms. After that its next message starts a
   * new epoch (a client resuming from before gets `recovered: false`). At least `history.maxAgeMs`.
   * Default 86_400_000 (24 h).
   */
  streamTtlMs?: number;
  /**
   * How long a revocation is remembered, in ms: set it to at least the longest lifetime of the JWTs
   * you accept, or a token issued before the revocation is accepted again once it is forgotten.
   * Default 86_400_000 (24 h).
   */
  revocationTtlMs?: number;
  /**
   * Shard channels (and hash-tag slots) streams are spread over. Every node subscribes to all of
   * them; on Redis Cluster they spread publications over up to this many shards. Every node of a
   * deployment must use the same value. Default 16.
   */
  shards?: number;
  /** Bound on any one Redis command, in ms: past it the operation fails with `StoreUnavailableError`. Default 2_000. */
  commandTimeoutMs?: number;
  /** Bound on one connection attempt, in ms. Default 5_000. */
  connectTimeoutMs?: number;
  /**
   * Streams whose last position each node remembers, to notice publications it missed while its
   * subscriber connection was down and deliver them from history, in order. 0 turns that off.
   * Default 10_000.
   */
  trackedStreams?: number;
  /** This node's id, for logs, metrics and `/healthz`. Default: random per engine. */
  nodeId?: string;
  /**
   * How long a publish's idempotency key is remembered, in ms: a publish with the same key and
   * audience within it publishes nothing. Default 86_400_000 (24 h).
   */
  idempotencyWindowMs?: number;
  /** PING period on every Redis connection (command and subscriber, per Cluster node), in ms. Default 1_000. */
  livenessIntervalMs?: number;
  /**
   * A connection whose PING gets no reply within this counts as down, in ms: the broker turns
   * `reconnecting` and the connection is dropped and re-established. Default 2_000.
   */
  livenessTimeoutMs?: number;
  /**
   * How long a node's entries in the connection registry and presence stay listed after its last
   * sign of life, in ms: a node killed -9 has them gone from every read within this. Renewed every
   * third of it; at least 300, at most 86_400_000 (a day). Default 10_000.
   */
  leaseMs?: number;
  /** Longest wait between reconnection attempts, in ms (exponential with jitter up to it). Default 2_000. */
  maxReconnectDelayMs?: number;
  /**
   * Extra ioredis options for every connection, e.g. `tls: { ca }` for a private CA, or `username`
   * and `password` (and `sentinelPassword` for the sentinels) with a Cluster or Sentinel target.
   */
  redis?: RedisOptions;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
}

/** Everything the gateway needs from Redis: one command connection (or Cluster), one subscriber connection per node. */
export interface RedisEngine {
  readonly broker: RedisBroker;
  readonly ticketStore: RedisTicketStore;
  readonly revocationStore: RedisRevocationStore;
  /** The cluster-wide connection registry (`connectionStore`), under this node's lease. */
  readonly connectionStore: RedisConnectionStore;
  /** Who is on which topic, across nodes (`presenceStore`), under the same lease. */
  readonly presenceStore: RedisPresenceStore;
  /** The broker's health (`ready` | `connecting` | `reconnecting` | `closed`), for `/healthz`. */
  readonly status: BrokerStatus;
  /** Resolves when connected and subscribed; rejects with `StoreUnavailableError` after `timeoutMs` (default `connectTimeoutMs`). */
  ready(timeoutMs?: number): Promise<void>;
  /** Closes the broker and every connection. */
  close(): Promise<void>;
}


const DAY_MS = 86_400_000;

/** The engine's defaults, for the options that have one (the gateway CLI reads them from here). */
export const REDIS_ENGINE_DEFAULTS = {
  keyPrefix: 'authsocket:',
  // The gateway's own history bounds, so that an engine built without `history` matches a gateway built without it.
  maxEntries: DEFAULT_HISTORY.maxEntries,
  maxAgeMs: DEFAULT_HISTORY.maxAgeMs,
  streamTtlMs: DAY_MS,
  revocationTtlMs: DAY_MS,
  shards: 16,
  commandTimeoutMs: 2_000,
  connectTimeoutMs: 5_000,
  maxReconnectDelayMs: 2_000,
  trackedStreams: 10_000,
  idempotencyWindowMs: DEFAULT_IDEMPOTENCY_WINDOW_MS,
  livenessIntervalMs: 1_000,
  livenessTimeoutMs: 2_000,
  leaseMs: 10_000,
} as const;

/** The shortest lease: a third of it between renewals must still leave room for a command's round trip. */
const MIN_LEASE_MS = 300;
/** The longest lease, one day: its renewal interval must stay within setInterval's range. */
const MAX_LEASE_MS = 86_400_000;

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(name, `expected a positive integer, got ${value}`);
  return value;
}

/** Reconnection delay: exponential from 25 ms, capped, with full jitter so nodes do not reconnect in lockstep. */
const reconnectDelay = (attempt: number, maxMs: number): number => backoff(attempt, { minDelayMs: 25, maxDelayMs: maxMs });

const clusterNode = () =>
  new ConfigError('url', "points at a Redis Cluster node: pass { cluster: ['host:port', ...] } instead");
const notCluster = () => new ConfigError('cluster', "the nodes are not in cluster mode: pass a 'redis://' URL instead");

/**
 * Connects to Redis and returns the gateway's broker, ticket store and revocation store. `target`
 * is a `redis://[user:password@]host:port[/db]` URL (`rediss://` for TLS), a Redis Cluster's seed
 * nodes `{ cluster: ['host:port', ...] }` (credentials in `options.redis`), or a Sentinel set
 * `{ sentinels: ['host:port', ...], name }`. Pass what it returns to
 * `createGateway({ broker, ticketStore, revocationStore, connectionStore, presenceStore, ... })` on every node.
 */
export function createRedisEngine(target: RedisTarget, options: RedisEngineOptions = {}): RedisEngine {
  const parsed = parseTarget(target);
  const logger = options.logger ?? silentLogger;
  const maxEntries = positiveInteger('history.maxEntries', options.history?.maxEntries ?? REDIS_ENGINE_DEFAULTS.maxEntries);
  const maxAgeMs = positiveInteger('history.maxAgeMs', options.history?.maxAgeMs ?? REDIS_ENGINE_DEFAULTS.maxAgeMs);
  const streamTtlMs = positiveInteger('streamTtlMs', options.streamTtlMs ?? REDIS_ENGINE_DEFAULTS.streamTtlMs);
  if (streamTtlMs < maxAgeMs) throw new ConfigError('streamTtlMs', `must be at least history.maxAgeMs (${maxAgeMs})`);
  const revocationTtlMs = positiveInteger('revocationTtlMs', options.revocationTtlMs ?? REDIS_ENGINE_DEFAULTS.revocationTtlMs);
  const commandTimeoutMs = positiveInteger('commandTimeoutMs', options.commandTimeoutMs ?? REDIS_ENGINE_DEFAULTS.commandTimeoutMs);
  const connectTimeoutMs = positiveInteger('connectTimeoutMs', options.connectTimeoutMs ?? REDIS_ENGINE_DEFAULTS.connectTimeoutMs);
  const maxDelay = positiveInteger('maxReconnectDelayMs', options.maxReconnectDelayMs ?? REDIS_ENGINE_DEFAULTS.maxReconnectDelayMs);
  const idempotencyWindowMs = positiveInteger(
    'idempotencyWindowMs',
    options.idempotencyWindowMs ?? REDIS_ENGINE_DEFAULTS.idempotencyWindowMs,
  );
  const liveness = {
    intervalMs: positiveInteger('livenessIntervalMs', options.livenessIntervalMs ?? REDIS_ENGINE_DEFAULTS.livenessIntervalMs),
    timeoutMs: positiveInteger('livenessTimeoutMs', options.livenessTimeoutMs ?? REDIS_ENGINE_DEFAULTS.livenessTimeoutMs),
  };
  const leaseMs = positiveInteger('leaseMs', options.leaseMs ?? REDIS_ENGINE_DEFAULTS.leaseMs);
  if (leaseMs < MIN_LEASE_MS) throw new ConfigError('leaseMs', `must be at least ${MIN_LEASE_MS}, got ${leaseMs}`);
  if (leaseMs > MAX_LEASE_MS) throw new ConfigError('leaseMs', `must be at most ${MAX_LEASE_MS} (one day), got ${leaseMs}`);
  const trackedStreams = options.trackedStreams ?? REDIS_ENGINE_DEFAULTS.trackedStreams;
  if (!Number.isSafeInteger(trackedStreams) || trackedStreams < 0) {
    throw new ConfigError('trackedStreams', `expected a non-negative integer, got ${trackedStreams}`);
  }
  if (options.nodeId !== undefined && (typeof options.nodeId !== 'string' || options.nodeId === '')) {
    throw new ConfigError('nodeId', 'expected a non-empty string');
  }
  const keys = new Keys(options.keyPrefix ?? REDIS_ENGINE_DEFAULTS.keyPrefix, options.shards ?? REDIS_ENGINE_DEFAULTS.shards);

  const connectionOptions: RedisOptions = {
    commandTimeout: commandTimeoutMs,
    connectTimeout: connectTimeoutMs,
    // Commands wait for the first connection; once it is lost they fail at the next failed attempt
    // (or at once, see `attempt`), never wait for Redis indefinitely.
    enableOfflineQueue: true,
    maxRetriesPerRequest: 0,
    // A command in flight when the connection dropped is failed, not sent again: a publish script
    // run twice would publish twice.
    autoResendUnfulfilledCommands: false,
    // The subscriber resubscribes itself on every 'ready', and only then reports subscribed.
    autoResubscribe: false,
    retryStrategy: (attempt: number) => reconnectDelay(attempt, maxDelay),
    ...options.redis,
  };
  const channels = [keys.control, ...keys.channels];
  const { command, commandNodes, subscriber: layout } = connect(parsed, connectionOptions, channels, (attempt) =>
    reconnectDelay(attempt, maxDelay),
  );
  const subscriber = new Subscriber({ channels, ...layout, liveness, logger });
  const broker = new RedisBroker(command, subscriber, {
    keys,
    nodeId: options.nodeId,
    maxEntries,
    maxAgeMs,
    streamTtlMs,
    idempotencyWindowMs,
    deliveryTimeoutMs: commandTimeoutMs,
    startTimeoutMs: connectTimeoutMs,
    trackedStreams,
    liveness,
    commandNodes,
    logger,
  });
  // Without a listener ioredis prints every connection error; the broker's status says what matters.
  command.on('error', (error: Error) => logger.debug({ role: 'command', err: error.message }, 'redis connection error'));
  if (command instanceof Cluster) {
    command.on('refresh', () => subscriber.relayout());
    command.on('node error', (error: Error, node: string) => {
      logger.debug({ role: 'command', node, err: error.message }, 'redis cluster node error');
      if (/cluster support disabled/i.test(error.message)) broker.refuse(notCluster());
    });
  } else if (parsed.kind === 'standalone') {
    // A Cluster node answers commands on its own slots only: say so at once, not after the first MOVED.
    command.on('ready', () => {
      command.info('cluster').then(
        (info) => {
          if (/^cluster_enabled:1/m.test(info)) broker.refuse(clusterNode());
        },
        () => {},
      );
    });
  }
  subscriber.relayout();
  const lease = new NodeLease(command, keys, { leaseMs, logger });
  let closing: Promise<void> | undefined;
  return {
    broker,
    ticketStore: new RedisTicketStore(command, keys),
    revocationStore: new RedisRevocationStore(command, keys, revocationTtlMs),
    connectionStore: new RedisConnectionStore(command, keys, lease),
    presenceStore: new RedisPresenceStore(command, keys, lease),
    get status() {
      return broker.status;
    },
    ready: (timeoutMs?: number) => broker.ready(timeoutMs),
    close() {
      closing ??= (async () => {
        await lease.close();
        await broker.close();
        await subscriber.close();
        // QUIT when connected (replies flushed first); a down connection is just dropped.
        if (command.status === 'ready') await command.quit().catch(() => command.disconnect());
        else command.disconnect();
      })();
      return closing;
    },
  };
}
