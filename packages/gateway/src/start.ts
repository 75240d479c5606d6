import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Clock,
  createGateway,
  type Gateway,
  type JwtOptions,
  type MessageEvent,
  type MessageHandler,
  type PermissionRule,
  type PresenceOptions,
  systemClock,
  type TopicAction,
} from '@authsocket/server';
import { dropUndefined } from '@authsocket/protocol';
import { createHttpProxy, type HttpProxy } from '@authsocket/proxy';
import { createRedisEngine, type RedisEngine, type RedisTarget } from '@authsocket/redis';
import { createStreamForwarder, type StreamForwarder } from '@authsocket/worker';
import { createApp } from './app.js';
import { answerClientErrors } from './client-errors.js';
import { AUDIENCE_NONE, fromServerConfigError, PROXY_URLS, printableConfig } from './config.js';
import { demoChatHandler } from './demo-backend.js';
import { DEMO_TOPIC_PREFIX } from './demo-users.js';
import { createLogger, type DestinationStream, type Logger } from './logger.js';
import { createMetrics } from './metrics.js';
import type { GatewayConfig } from './options.js';

export interface StartOptions {
  /** Where JSON logs go. Default: stdout. */
  readonly logDestination?: DestinationStream;
  /** Add prom-client's process metrics (they observe the process for the rest of its life). Default false. */
  readonly processMetrics?: boolean;
  /** Lines to log at `warn` once the logger exists (from `loadConfig`). */
  readonly warnings?: readonly string[];
  /** Time source of the gateway and the demo identity. Default: the system clock. */
  readonly clock?: Clock;
}

export interface RunningGateway {
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  /** Where WebSocket clients connect. */
  readonly wsUrl: string;
  /** The API key generated for this demo run, if one was (to be shown once, never logged). */
  readonly generatedApiKey: string | undefined;
  /** Closes every WebSocket with 1001, then the HTTP server. Idempotent. */
  close(): Promise<void>;
  /**
   * A graceful stop (SIGTERM): `/healthz` turns 503 `closing` at once so balancers stop sending
   * clients, connections keep being served for `--drain-delay`, then `close()`.
   */
  shutdown(): Promise<void>;
}

/** Starts the gateway process's server in this process: `config` as `loadConfig` returns it. */
export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<RunningGateway> {
  const logger = createLogger(config.logLevel, config.nodeId, options.logDestination);
  const clock = options.clock ?? systemClock;
  for (const warning of options.warnings ?? []) logger.warn({}, warning);
  logger.debug({ config: printableConfig(config) }, 'configuration');

  const jwtSecret = config.jwtSecret ?? (config.demo && !config.jwtPublicKey && !config.jwksUrl ? generated() : undefined);
  if (jwtSecret !== undefined && config.jwtSecret === undefined) {
    logger.warn({}, 'demo: generated a random JWT secret for this run; set AUTHSOCKET_JWT_SECRET to keep tokens valid across restarts');
  }
  const generatedApiKey = config.apiKey === undefined && config.demo ? generated() : undefined;
  const apiKey = config.apiKey ?? generatedApiKey;
  if (generatedApiKey !== undefined) logger.info({}, 'demo: generated an API key for this run (shown once on stderr)');
  if (apiKey === undefined) logger.info({}, 'no api-key: the HTTP API under /api is off');

  const engine = startRedis(config, logger);
  let gateway: Gateway;
  let proxy: HttpProxy | undefined;
  let forwarder: StreamForwarder | undefined;
  try {
    proxy = startProxy(config, logger, clock);
    forwarder = startForwarder(config, logger, clock);
    gateway = buildGateway(config, { jwtSecret, clock, logger, engine, proxy, forwarder });
  } catch (error) {
    await proxy?.close();
    await forwarder?.close();
    await engine?.close();
    throw error;
  }
  const metrics = createMetrics(gateway, {
    node: config.nodeId,
    broker: engine?.broker,
    proxy,
    forwarder,
    processMetrics: options.processMetrics ?? false,
  });
  const app = createApp({ config, gateway, logger, metrics, apiKey, jwtSecret, clock });
  const server = http.createServer(app);
  answerClientErrors(server, logger);
  gateway.attach(server);

  try {
    await listen(server, config.port, config.host);
  } catch (error) {
    await gateway.close();
    await proxy?.close();
    await forwarder?.close();
    await engine?.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const origin = `http://${displayHost(config.host)}:${port}`;
  const wsUrl = `ws://${displayHost(config.host)}:${port}${config.wsPath}`;
  logger.info(
    { url: origin, wsUrl, demo: config.demo, ticketMode: config.ticketMode, expiryPolicy: config.expiryPolicy },
    'gateway listening',
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      logger.info({}, 'gateway shutting down');
      await gateway.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      // After the gateway: its closing connections' disconnect events still go out.
      await proxy?.close();
      await forwarder?.close();
      await engine?.close();
      logger.info({}, 'gateway stopped');
    })());
  let draining: Promise<void> | undefined;
  const shutdown = () =>
    (draining ??= (async () => {
      gateway.drain();
      if (config.drainDelayMs > 0) {
        logger.info({ drainDelayMs: config.drainDelayMs }, 'gateway draining: not ready, still serving');
        await new Promise((resolve) => setTimeout(resolve, config.drainDelayMs));
      }
      await close();
    })());
  return { url: origin, wsUrl, generatedApiKey, close, shutdown };
}

/**
 * The server library's own checks of `config` (key sizes, algorithms, ...), without listening or
 * connecting anywhere: builds the gateway in memory and closes it. Throws what `startGateway` would.
 */
export async function checkGatewayConfig(config: GatewayConfig): Promise<void> {
  const logger = createLogger('silent', config.nodeId);
  const jwtSecret = config.jwtSecret ?? (config.demo && !config.jwtPublicKey && !config.jwksUrl ? generated() : undefined);
  const gateway = buildGateway(config, { jwtSecret, clock: systemClock, logger, engine: undefined, proxy: undefined, forwarder: undefined });
  await gateway.close();
}

interface GatewayParts {
  readonly jwtSecret: string | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Redis for tickets, revocations, history and fan-out; in memory without it. */
  readonly engine: RedisEngine | undefined;
  /** The HTTP event proxy to the application's backend, when a --proxy-*-url is set. */
  readonly proxy: HttpProxy | undefined;
  /** The queue path (`--forward-stream`): owns `onMessage`. */
  readonly forwarder: StreamForwarder | undefined;
}

/** The queue path's handler, when --forward-stream is set; `loadConfig` made sure of --redis-url and the secret. */
function startForwarder(config: GatewayConfig, logger: Logger, clock: Clock): StreamForwarder | undefined {
  if (config.forwardStream === undefined || config.forwardSecret === undefined || config.redisUrl === undefined) return undefined;
  // The password of --redis-password goes into the URL the forwarder connects with (never logged).
  const url = new URL(config.redisUrl);
  if (config.redisPassword !== undefined) url.password = encodeURIComponent(config.redisPassword);
  try {
    return createStreamForwarder({
      redis: url.href,
      stream: config.forwardStream,
      secret: config.forwardSecret,
      nodeId: config.nodeId,
      ...(config.forwardMaxLength === undefined ? {} : { maxLength: config.forwardMaxLength }),
      ...(config.forwardPartitions === undefined ? {} : { partitions: config.forwardPartitions }),
      ...(config.forwardClaims === undefined ? {} : { forwardClaims: config.forwardClaims }),
      logger: logger.child({ component: 'forwarder' }),
      clock,
    });
  } catch (error) {
    throw fromServerConfigError(error);
  }
}

/** The HTTP event proxy for the events that have a URL; `loadConfig` made sure the secret is there. */
function startProxy(config: GatewayConfig, logger: Logger, clock: Clock): HttpProxy | undefined {
  const urls = dropUndefined(Object.fromEntries(Object.entries(PROXY_URLS).map(([event, key]) => [event, config[key]])));
  if (Object.keys(urls).length === 0 || config.proxySecret === undefined) return undefined;
  try {
    return createHttpProxy({
      ...urls,
      secret: config.proxySecret,
      nodeId: config.nodeId,
      ...(config.proxyTimeoutMs === undefined ? {} : { timeoutMs: config.proxyTimeoutMs }),
      ...(config.proxyForwardClaims === undefined ? {} : { forwardClaims: config.proxyForwardClaims }),
      logger: logger.child({ component: 'proxy' }),
      clock,
    });
  } catch (error) {
    throw fromServerConfigError(error);
  }
}

/** The proxy's handler methods with `onMessage` beside them: the proxy has no message event. */
function withMessages(proxy: HttpProxy, onMessage: (event: MessageEvent) => unknown): MessageHandler {
  const { onConnect, onSubscribe, onPublish, onRpc, onDisconnect } = proxy;
  return dropUndefined({ onConnect, onSubscribe, onPublish, onRpc, onDisconnect, onMessage });
}

/**
 * Connects to the configured Redis target, if any, without waiting: a node whose Redis is down
 * starts anyway, answers `/healthz` with 503 and fails ticket requests closed until the link is
 * back, which it re-establishes itself. The broker logs its own link changes (never the URL or the
 * password).
 */
function startRedis(config: GatewayConfig, logger: Logger): RedisEngine | undefined {
  const target = redisTarget(config);
  if (target === undefined) return undefined;
  try {
    return createRedisEngine(target, {
      nodeId: config.nodeId,
      keyPrefix: config.redisKeyPrefix,
      shards: config.redisShards,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      connectTimeoutMs: config.redisConnectTimeoutMs,
      maxReconnectDelayMs: config.redisMaxReconnectDelayMs,
      streamTtlMs: config.redisStreamTtlMs,
      revocationTtlMs: config.redisRevocationTtlMs,
      livenessIntervalMs: config.redisLivenessIntervalMs,
      livenessTimeoutMs: config.redisLivenessTimeoutMs,
      trackedStreams: config.redisTrackedStreams,
      idempotencyWindowMs: config.redisIdempotencyWindowMs,
      leaseMs: config.redisLeaseMs,
      // `--history off`: the gateway keeps none, and the engine its defaults (nothing is appended).
      ...(config.history === false ? {} : { history: config.history }),
      ...(config.redisPassword !== undefined ? { redis: { password: config.redisPassword } } : {}),
      logger: logger.child({ component: 'redis' }),
    });
  } catch (error) {
    throw fromServerConfigError(error);
  }
}

/** `loadConfig` lets at most one of the three through. */
function redisTarget(config: GatewayConfig): RedisTarget | undefined {
  if (config.redisUrl !== undefined) return config.redisUrl;
  if (config.redisClusterNodes !== undefined) return { cluster: config.redisClusterNodes };
  if (config.redisSentinels !== undefined) return { sentinels: config.redisSentinels, name: config.redisSentinelName };
  return undefined;
}

function buildGateway(config: GatewayConfig, { jwtSecret, clock, logger, engine, proxy, forwarder }: GatewayParts): Gateway {
  const jwt: JwtOptions = {
    secret: jwtSecret,
    publicKey: config.jwtPublicKey,
    jwksUrl: config.jwksUrl,
    jwksCacheMaxAgeMs: config.jwksCacheMaxAgeMs,
    jwksCooldownMs: config.jwksCooldownMs,
    jwksTimeoutMs: config.jwksTimeoutMs,
    jwksStaleIfErrorMs: config.jwksStaleIfErrorMs,
    issuer: config.issuer,
    audience: config.audience === AUDIENCE_NONE ? undefined : config.audience,
    algorithms: config.jwtAlgorithms === undefined ? undefined : [...config.jwtAlgorithms],
    clockToleranceSec: config.jwtClockToleranceSec,
    userClaim: config.jwtUserClaim,
  };
  // Demo: chat messages arrive as `message` frames and are published under the sender's
  // authenticated name (see demo-backend.ts), through the handler context's own `publish`.
  // The queue path, when configured, takes every message frame (the demo's chat included).
  const onMessage = forwarder ? forwarder.onMessage : config.demo ? demoChatHandler({ logger, clock }) : undefined;
  try {
    return createGateway({
      jwt,
      ticket: config.ticketMode,
      ticketTtlMs: config.ticketTtlMs,
      ticketReuse: config.ticketReuse,
      requireAuthMessage: config.requireAuthMessage,
      handshakeToken: config.handshakeToken,
      perMessageAuth: config.perMessageAuth,
      verificationCacheSize: config.verificationCacheSize,
      maxHeldMessages: config.maxHeldMessages,
      closeOnLogout: config.closeOnLogout,
      maxPayload: config.maxPayload,
      maxBufferedBytes: config.maxBufferedBytes,
      messageRateLimit: config.messageRateLimit,
      authRateLimit: config.authRateLimit,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      history: config.history,
      presence: presenceOf(config),
      expiryPolicy: config.expiryPolicy,
      reauthWindowMs: config.reauthWindowMs,
      reauthGraceMs: config.reauthGraceMs,
      authTimeoutMs: config.authTimeoutMs,
      maxConnectionsPerUser: config.maxConnectionsPerUser,
      acceptNoSubprotocol: config.acceptNoSubprotocol,
      upgradeRateLimit: config.upgradeRateLimit,
      trustProxy: config.trustProxy,
      nodeId: config.nodeId,
      path: config.wsPath,
      allowedOrigins: config.allowedOrigins,
      broker: engine?.broker,
      ticketStore: engine?.ticketStore,
      revocationStore: engine?.revocationStore,
      connectionStore: config.registry ? engine?.connectionStore : false,
      presenceStore: engine?.presenceStore,
      authorize: topicAccess(config),
      permissions: permissionRules(config),
      permissionsClaim: config.permissionsClaim,
      subscribeClaim: config.subscribeClaim,
      subscriptionTokenClaim: config.subscriptionTokenClaim,
      ...(proxy ? { handler: onMessage ? withMessages(proxy, onMessage) : proxy } : { onMessage }),
      logger: logger.child({ component: 'gateway' }),
      clock,
    });
  } catch (error) {
    throw fromServerConfigError(error);
  }
}

/**
 * Who may do what on topics. By default clients may subscribe to any topic and publish on none:
 * a client's publish reaches subscribers in the same shape as a backend's, so it could be used to
 * spoof one. In the demo, clients may only subscribe to the chat topics; the gateway publishes
 * chat lines itself, naming the sender from the token (a `from` in a publish could lie).
 */
function topicAccess(config: GatewayConfig): (user: string, action: TopicAction, topic: string) => boolean {
  const subscribe = config.subscribeTopics ?? (config.demo ? [DEMO_TOPIC_PREFIX] : ['']);
  const publish = config.publishTopics ?? [];
  // Reading a topic's presence is allowed where subscribing is: its subscribers see each other anyway.
  return (_user, action, topic) =>
    // Presence is reading: it follows the subscribe list.
    (action === 'publish' ? publish : subscribe).some((prefix) => topic.startsWith(prefix));
}

/**
 * The `--permission` rules, and the prefix lists as rules beside them when they were set: once
 * permissions decide, `authorize` is not asked, so a prefix list the operator gave must become one.
 * Undefined without rules or a claim: the prefix lists decide through `authorize`.
 */
function permissionRules(config: GatewayConfig): readonly PermissionRule[] | undefined {
  if (config.permissions === undefined && config.permissionsClaim === undefined) return undefined;
  const prefixRule = (prefixes: readonly string[] | undefined, allow: TopicAction[]): PermissionRule[] =>
    prefixes === undefined || prefixes.length === 0 ? [] : [{ topics: prefixes.map((prefix) => `${prefix}*`), allow }];
  return [
    ...(config.permissions ?? []),
    ...prefixRule(config.subscribeTopics, ['subscribe', 'presence']),
    ...prefixRule(config.publishTopics, ['publish']),
  ];
}

/** The library's `presence` from the `--presence*` options. */
function presenceOf(config: GatewayConfig): PresenceOptions | false {
  if (!config.presence) return false;
  return {
    ...(config.presenceTopics === undefined ? {} : { topics: config.presenceTopics }),
    ...(config.presenceInfoClaim === undefined ? {} : { infoClaim: config.presenceInfoClaim }),
    ...(config.presenceMaxMembers === undefined ? {} : { maxMembers: config.presenceMaxMembers }),
    joinLeave: config.presenceJoinLeave,
  };
}

function generated(): string {
  return randomBytes(32).toString('base64url');
}

function listen(server: http.Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new Error(`cannot listen on ${host ?? '*'}:${port}: ${error.code ?? error.message}`, { cause: error }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** A host for URLs: `localhost` for the wildcard addresses, brackets around IPv6 literals. */
function displayHost(host: string | undefined): string {
  if (host === undefined || host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
