import { LIMITS } from '@authsocket/protocol';
import type { Gateway } from '@authsocket/server';
import express, { type Request, type RequestHandler, Router } from 'express';
import { requireApiKey } from './api-key.js';
import { HttpError, notFound } from './http-errors.js';
import type { Logger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';

/** Largest JSON body the API accepts; the WebSocket's own frame limit is 64 KiB too. */
export const API_BODY_LIMIT = '64kb';
const MAX_USER_LENGTH = 256;

export interface HttpApiOptions {
  readonly apiKey: string;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
}

/**
 * The application backend's API, behind `Authorization: Bearer <api key>`:
 * push to a user, a topic or everyone; revoke a user; count a user's connections.
 */
export function createHttpApi(gateway: Gateway, { apiKey, logger, metrics }: HttpApiOptions): Router {
  const api = Router();
  api.use(countRequests(metrics));
  // The key is checked before any body is read: an unauthenticated caller costs no parsing.
  api.use(requireApiKey(apiKey));
  api.use(express.json({ limit: API_BODY_LIMIT }));

  api.post('/users/:user/messages', async (req, res) => {
    const user = userParam(req);
    const delivered = await gateway.sendToUser(user, dataOf(req));
    logger.info({ api: 'sendToUser', user, delivered }, 'api: message to user');
    res.json({ delivered });
  });
  api.post('/topics/:topic/messages', async (req, res) => {
    const topic = topicParam(req);
    const delivered = await gateway.publish(topic, dataOf(req));
    logger.info({ api: 'publish', topic, delivered }, 'api: message to topic');
    res.json({ delivered });
  });
  api.post('/broadcast', async (req, res) => {
    const delivered = await gateway.broadcast(dataOf(req));
    logger.info({ api: 'broadcast', delivered }, 'api: broadcast');
    res.json({ delivered });
  });
  api.post('/users/:user/revoke', async (req, res) => {
    const user = userParam(req);
    const closed = await gateway.revokeUser(user);
    logger.info({ api: 'revokeUser', user, closed }, 'api: user revoked');
    res.json({ closed });
  });
  api.get('/users/:user/connections', (req, res) => {
    res.json({ count: gateway.connectionCount(userParam(req)) });
  });
  api.use(notFound);
  return api;
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

function dataOf(req: Request): unknown {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !Object.hasOwn(body, 'data')) {
    throw new HttpError(400, 'expected Content-Type: application/json and a body like {"data": ...}');
  }
  return (body as { data: unknown }).data;
}

function userParam(req: Request): string {
  const user = req.params.user;
  if (typeof user !== 'string' || user.length === 0 || user.length > MAX_USER_LENGTH) {
    throw new HttpError(400, `user must be 1 to ${MAX_USER_LENGTH} characters`);
  }
  return user;
}

function topicParam(req: Request): string {
  const topic = req.params.topic;
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > LIMITS.topicLength) {
    throw new HttpError(400, `topic must be 1 to ${LIMITS.topicLength} characters`);
  }
  return topic;
}
