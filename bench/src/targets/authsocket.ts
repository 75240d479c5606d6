import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHttpProxy } from '@authsocket/proxy';
import { createRedisEngine, type RedisEngine } from '@authsocket/redis';
import type { createGateway as CreateGateway, Gateway, MessageHandler } from '@authsocket/server';
import { createStreamForwarder, type StreamForwarder } from '@authsocket/worker';
import {
  type AppData,
  AUDIENCE,
  behaviour,
  FORWARD_SECRET,
  ISSUER,
  PROXY_SECRET,
  QUEUE_STREAM,
  SECRET,
  type ServerConfig,
  sleep,
  usesRedis,
  workersOf,
} from '../common.js';
import type { TargetServer } from './types.js';

type CreateGatewayFn = typeof CreateGateway;

/**
 * `authsocket-exp` loads the server from BENCH_AUTHSOCKET_EXPERIMENT (a patched copy of the dist,
 * e.g. a proposed change), so an experiment is measured side by side with the workspace build
 * without touching `packages/server`.
 */
async function load(target: string): Promise<CreateGatewayFn> {
  const experiment = process.env.BENCH_AUTHSOCKET_EXPERIMENT;
  if (target === 'authsocket-exp' && experiment === undefined) throw new Error('BENCH_AUTHSOCKET_EXPERIMENT is not set');
  const specifier = target === 'authsocket-exp' ? path.resolve(experiment as string) : '@authsocket/server';
  const module = (await import(target === 'authsocket-exp' ? pathToFileURL(specifier).href : specifier)) as {
    createGateway: CreateGatewayFn;
  };
  return module.createGateway;
}

/**
 * The application side. In process: `message` frames echoed to the connection, an `rpc` answered
 * with `{echo: data}`. `authsocket-proxy`: the HTTP event proxy, rpc only, each one a signed POST to
 * the backend process at `config.rpcUrl` (defaults otherwise: timeout 3 s, 256 requests in flight,
 * undici keep-alive pool). `echoReply` (the queue scenario): `message` answered `reply({echo: data})`.
 * `authsocket-redis`: the same reply sent through the Redis broker (`gateway.sendToConnection`).
 * `queue-*`: the stream forwarder; the worker processes reply.
 */
function handlerFor(config: ServerConfig, forwarder: StreamForwarder | undefined, gateway: () => Gateway): MessageHandler {
  if (behaviour(config.target) === 'authsocket-proxy') {
    if (config.rpcUrl === undefined) throw new Error('authsocket-proxy needs rpcUrl (the backend process)');
    return createHttpProxy({ secret: PROXY_SECRET, nodeId: 'bench', rpc: config.rpcUrl });
  }
  // The queue path: every message an entry in the stream, acked once committed; the workers reply.
  if (forwarder) return forwarder;
  if (behaviour(config.target).startsWith('authsocket-redis')) {
    // The worker's reply path (the broker's connection audience, through Redis), without the queue:
    // the ack goes out at once, the reply when it has come back from Redis.
    return {
      onMessage: ({ connection, data }) => {
        gateway()
          .sendToConnection(connection.id, { echo: data })
          .catch(() => undefined);
      },
      onRpc: ({ data }) => ({ echo: data }),
    };
  }
  if (config.echoReply) {
    return {
      onMessage: ({ data, reply }) => {
        reply({ echo: data });
      },
      onRpc: ({ data }) => ({ echo: data }),
    };
  }
  return {
    onMessage: ({ connection, data }) => {
      connection.send(data);
    },
    onRpc: ({ data }) => ({ echo: data }),
  };
}

/**
 * authsocket's gateway with the options that matter for a fair comparison: no per-address upgrade
 * limit (every client comes from 127.0.0.1), a frame rate limit far above what the bench sends,
 * defaults for everything else (history on, heartbeat 30 s, ticket mode 'optional').
 */
export async function startAuthsocket(config: ServerConfig): Promise<TargetServer> {
  const createGateway = await load(config.target);
  let reauths = 0;
  let engine: RedisEngine | undefined;
  let forwarder: StreamForwarder | undefined;
  if (usesRedis(config.target)) {
    if (config.redisUrl === undefined) throw new Error(`${config.target} needs redisUrl (the run's redis-server)`);
    engine = createRedisEngine(config.redisUrl, { nodeId: 'bench' });
    if (workersOf(config.target) > 0) {
      forwarder = createStreamForwarder({ redis: config.redisUrl, stream: QUEUE_STREAM, secret: FORWARD_SECRET, nodeId: 'bench' });
    }
  }
  const gateway = createGateway({
    jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
    upgradeRateLimit: false,
    messageRateLimit: { limit: 1_000_000, windowMs: 1_000 },
    authRateLimit: { limit: 1_000, windowMs: 60_000 },
    perMessageAuth: behaviour(config.target) === 'authsocket-pma',
    ...(behaviour(config.target) === 'authsocket-nohistory' ? { history: false as const } : {}),
    ...(config.reauthWindowMs === undefined ? {} : { reauthWindowMs: config.reauthWindowMs }),
    ...(engine ? { broker: engine.broker, ticketStore: engine.ticketStore, revocationStore: engine.revocationStore, connectionStore: engine.connectionStore } : {}),
    ...(/-noregistry$/.test(behaviour(config.target)) ? { connectionStore: false as const } : {}),
    // Called from `onMessage` only, long after `gateway` exists.
    handler: handlerFor(config, forwarder, () => gateway),
  });
  // Ready only once the broker is subscribed and the forwarder's connection (no offline queue:
  // a message before it is up would be refused `unavailable`) answers.
  if (engine) await engine.ready(10_000);
  if (forwarder) await until(forwarder, 10_000);
  gateway.on('authenticated', ({ method }) => {
    if (method === 'reauth') reauths++;
  });
  const server = http.createServer(gateway.handleRequest);
  gateway.attach(server);
  return {
    http: server,
    broadcast: (data: AppData) => gateway.broadcast(data),
    push: (user: string, data: AppData) => gateway.sendToUser(user, data),
    publish: (topic: string, data: AppData) => gateway.publish(topic, data),
    connections: () => gateway.connectionCount(),
    reauths: () => reauths,
  };
}

/** Waits until the forwarder's own Redis connection answers (`XLEN`), or fails after `timeoutMs`. */
async function until(forwarder: StreamForwarder, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      await forwarder.length();
      return;
    } catch (error) {
      if (Date.now() > end) throw error;
      await sleep(20);
    }
  }
}
