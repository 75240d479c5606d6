import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHttpProxy } from '@authsocket/proxy';
import type { createGateway as CreateGateway, MessageHandler } from '@authsocket/server';
import { type AppData, AUDIENCE, behaviour, ISSUER, PROXY_SECRET, SECRET, type ServerConfig } from '../common.js';
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
 * undici keep-alive pool).
 */
function handlerFor(config: ServerConfig): MessageHandler {
  if (behaviour(config.target) === 'authsocket-proxy') {
    if (config.rpcUrl === undefined) throw new Error('authsocket-proxy needs rpcUrl (the backend process)');
    return createHttpProxy({ secret: PROXY_SECRET, nodeId: 'bench', rpc: config.rpcUrl });
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
  const gateway = createGateway({
    jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
    upgradeRateLimit: false,
    messageRateLimit: { limit: 1_000_000, windowMs: 1_000 },
    authRateLimit: { limit: 1_000, windowMs: 60_000 },
    perMessageAuth: behaviour(config.target) === 'authsocket-pma',
    ...(behaviour(config.target) === 'authsocket-nohistory' ? { history: false as const } : {}),
    ...(config.reauthWindowMs === undefined ? {} : { reauthWindowMs: config.reauthWindowMs }),
    handler: handlerFor(config),
  });
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
