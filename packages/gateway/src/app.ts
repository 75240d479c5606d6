import type { Clock, Gateway } from '@authsocket/server';
import { AUDIENCE_NONE } from './config.js';
import type { RequestListener } from 'node:http';
import express from 'express';
import { createApiFastPath } from './api-fast-path.js';
import { createApiRoutes } from './api-routes.js';
import { createDemoBackend } from './demo-backend.js';
import { createDemoIdentity } from './demo-identity.js';
import { createHttpApi } from './http-api.js';
import { errorHandler, notFound } from './http-errors.js';
import type { Logger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';
import type { GatewayConfig } from './options.js';
import { requestLog } from './request-log.js';
import { createSite } from './site.js';

export interface AppParts {
  readonly config: GatewayConfig;
  readonly gateway: Gateway;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** The API key in force (configured or generated), or undefined: the API is off. */
  readonly apiKey: string | undefined;
  /** The HS256 secret in force, for the demo identity's tokens. */
  readonly jwtSecret: string | undefined;
  readonly clock: Clock;
}

/**
 * The HTTP edge, in order: the gateway's own endpoints (`POST /auth/ticket`, `GET /healthz`),
 * `GET /metrics`, the demo identity and demo backend, the backend API under `/api`, then the site at `/`.
 * In front of it all, the API's fast path takes the publish requests it can answer without Express.
 */
export function createApp(parts: AppParts): RequestListener {
  const { config, gateway, logger, metrics, apiKey, jwtSecret } = parts;
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLog(logger));
  app.use((req, res, next) => gateway.handleRequest(req, res, next));

  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  if (config.demo && jwtSecret !== undefined) {
    app.use(
      createDemoIdentity({
        secret: jwtSecret,
        issuer: config.issuer,
        audience: config.audience === AUDIENCE_NONE ? undefined : config.audience,
        gateway,
        logger,
        clock: parts.clock,
      }),
    );
    app.use(createDemoBackend({ gateway, logger, clock: parts.clock }));
  }

  const routes = apiKey === undefined ? undefined : createApiRoutes(gateway, { node: config.nodeId, logger });
  if (apiKey !== undefined && routes !== undefined) {
    app.use('/api', createHttpApi(routes, { apiKey, metrics }));
  } else {
    app.use('/api', (_req, res) => {
      res.status(404).json({ error: 'the HTTP API is off: start the gateway with --api-key' });
    });
  }

  app.use(createSite({ staticDir: config.staticDir, demo: config.demo, wsPath: config.wsPath, apiEnabled: apiKey !== undefined }));
  app.use(notFound);
  app.use(errorHandler(logger));
  if (apiKey === undefined || routes === undefined) return app;
  const fastPath = createApiFastPath(routes, { apiKey, metrics, logger });
  return (req, res) => {
    if (!fastPath(req, res)) app(req, res);
  };
}
