import type { ServerResponse } from 'node:http';
import express, { type Request, type RequestHandler, type Response, Router } from 'express';
import { requireApiKey } from './api-key.js';
import type { ApiInput, ApiRoute } from './api-routes.js';
import { notFound } from './http-errors.js';
import type { GatewayMetrics } from './metrics.js';

export { API_BODY_LIMIT, BATCH_BODY_LIMIT, MAX_BATCH } from './api-routes.js';

export interface HttpApiOptions {
  readonly apiKey: string;
  readonly metrics: GatewayMetrics;
}

/**
 * The application backend's API (the routes of `api-routes.ts`) as an Express router, behind
 * `Authorization: Bearer <api key>`. The publish routes' hot path is `api-fast-path.ts`, which
 * hands this router everything it does not take.
 */
export function createHttpApi(routes: readonly ApiRoute[], { apiKey, metrics }: HttpApiOptions): Router {
  const api = Router();
  api.use(countRequests(metrics));
  // The key is checked before any body is read: an unauthenticated caller costs no parsing.
  api.use(requireApiKey(apiKey));
  for (const route of routes) {
    const json = express.json({ limit: route.bodyLimit });
    const handler = async (req: Request, res: Response) => sendJson(res, await route.handle(inputOf(req)));
    if (route.method === 'GET') api.get(route.path, handler);
    else if (route.method === 'DELETE') api.delete(route.path, handler);
    else api.post(route.path, json, handler);
  }
  api.use(notFound);
  return api;
}

function inputOf(req: Request): ApiInput {
  return {
    params: req.params as Record<string, string | undefined>,
    body: req.body as unknown,
    query: req.query,
    header: (name) => req.get(name),
  };
}

/** `res.json` without Express's ETag and `res.send` machinery: an API answer is never cached. */
export function sendJson(res: ServerResponse, body: unknown): void {
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

function countRequests(metrics: GatewayMetrics): RequestHandler {
  return (req, res, next) => {
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.observeApiRequest(route, res.statusCode);
    });
    next();
  };
}
