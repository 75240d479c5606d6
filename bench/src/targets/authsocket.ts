import http from 'node:http';
import type { createGateway as CreateGateway } from '@authsocket/server';
import { type AppData, AUDIENCE, ISSUER, SECRET, type ServerConfig } from '../common.js';
import type { TargetServer } from './types.js';

/**
 * BENCH_AUTHSOCKET_MODULE points at another build of the server (an experiment with a proposed
 * change, measured against the workspace build without touching it); default: the workspace package.
 */
const { createGateway } = (await import(process.env.BENCH_AUTHSOCKET_MODULE ?? '@authsocket/server')) as {
  createGateway: typeof CreateGateway;
};

/**
 * authsocket's gateway with the options that matter for a fair comparison: no per-address upgrade
 * limit (every client comes from 127.0.0.1), a frame rate limit far above what the bench sends,
 * defaults for everything else (history on, heartbeat 30 s, ticket mode 'optional').
 */
export function startAuthsocket(config: ServerConfig): TargetServer {
  let reauths = 0;
  const gateway = createGateway({
    jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
    upgradeRateLimit: false,
    messageRateLimit: { limit: 1_000_000, windowMs: 1_000 },
    authRateLimit: { limit: 1_000, windowMs: 60_000 },
    perMessageAuth: config.target === 'authsocket-pma',
    ...(config.target === 'authsocket-nohistory' ? { history: false as const } : {}),
    ...(config.reauthWindowMs === undefined ? {} : { reauthWindowMs: config.reauthWindowMs }),
    onMessage: ({ connection, data }) => {
      connection.send(data);
    },
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
