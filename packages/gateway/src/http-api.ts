import { LIMITS } from '@authsocket/protocol';
import type { Gateway, PublishOptions } from '@authsocket/server';
import express, { type Request, type RequestHandler, Router } from 'express';
import { requireApiKey } from './api-key.js';
import { HttpError, notFound } from './http-errors.js';
import type { Logger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';

/** Largest JSON body the API accepts; the WebSocket's own frame limit is 64 KiB too. */
export const API_BODY_LIMIT = '64kb';
const MAX_USER_LENGTH = 256;
/** 1 to 255 visible ASCII characters: enough for a UUID or a hash, and safe in logs and Redis keys. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export interface HttpApiOptions {
  readonly apiKey: string;
  /** This node's id, in every answer: the counts are this node's own. */
  readonly node: string;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
}

/**
 * The application backend's API, behind `Authorization: Bearer <api key>`:
 * push to a user, a topic or everyone; revoke a user; count a user's connections.
 */
export function createHttpApi(gateway: Gateway, { apiKey, node, logger, metrics }: HttpApiOptions): Router {
  const api = Router();
  api.use(countRequests(metrics));
  // The key is checked before any body is read: an unauthenticated caller costs no parsing.
  api.use(requireApiKey(apiKey));
  api.use(express.json({ limit: API_BODY_LIMIT }));

  // Counts are this node's connections only (others deliver too, uncounted): hence `...Locally`.
  api.post('/users/:user/messages', async (req, res) => {
    const user = userParam(req);
    const options = publishOptions(req);
    const deliveredLocally = await gateway.sendToUser(user, dataOf(req), options);
    logger.info({ api: 'sendToUser', user, deliveredLocally, ...options }, 'api: message to user');
    res.json({ deliveredLocally, node });
  });
  api.post('/topics/:topic/messages', async (req, res) => {
    const topic = topicParam(req);
    const options = publishOptions(req);
    const deliveredLocally = await gateway.publish(topic, dataOf(req), options);
    logger.info({ api: 'publish', topic, deliveredLocally, ...options }, 'api: message to topic');
    res.json({ deliveredLocally, node });
  });
  api.post('/broadcast', async (req, res) => {
    const options = publishOptions(req);
    const deliveredLocally = await gateway.broadcast(dataOf(req), options);
    logger.info({ api: 'broadcast', deliveredLocally, ...options }, 'api: broadcast');
    res.json({ deliveredLocally, node });
  });
  api.post('/users/:user/revoke', async (req, res) => {
    const user = userParam(req);
    const closedLocally = await gateway.revokeUser(user);
    logger.info({ api: 'revokeUser', user, closedLocally }, 'api: user revoked');
    res.json({ closedLocally, node });
  });
  api.get('/users/:user/connections', (req, res) => {
    res.json({ connectedLocally: gateway.connectionCount(userParam(req)), node });
  });
  // One connection, by the id the backend got in the proxy's identity envelope: on any node.
  api.post('/connections/:id/messages', async (req, res) => {
    const connection = connectionParam(req);
    const options = publishOptions(req);
    const deliveredLocally = await gateway.sendToConnection(connection, dataOf(req), options);
    logger.info({ api: 'sendToConnection', connection, deliveredLocally, ...options }, 'api: message to connection');
    res.json({ deliveredLocally, node });
  });
  api.delete('/connections/:id', async (req, res) => {
    const connection = connectionParam(req);
    const { code, reason } = closeOf(req);
    const closedLocally = await gateway.closeConnection(connection, code, reason);
    logger.info({ api: 'closeConnection', connection, code, closedLocally }, 'api: connection closed');
    res.json({ closedLocally, node });
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

/** `Idempotency-Key`: a retry with the same key (and audience) within the store's window publishes nothing. */
function publishOptions(req: Request): PublishOptions {
  const key = req.get('idempotency-key');
  if (key === undefined) return {};
  if (!IDEMPOTENCY_KEY.test(key)) throw new HttpError(400, 'Idempotency-Key must be 1 to 255 visible ASCII characters');
  return { idempotencyKey: key };
}

/** A connection id as the gateway makes them (a UUID); anything else cannot name a connection. */
const CONNECTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function connectionParam(req: Request): string {
  const id = req.params.id;
  if (typeof id !== 'string' || !CONNECTION_ID.test(id)) throw new HttpError(400, 'connection id must be the id the gateway gave the connection');
  return id;
}

/** `?code=4000-4999|1000&reason=…` (default 1000, "closed by the application"). */
function closeOf(req: Request): { code: number; reason: string } {
  const { code: rawCode, reason: rawReason } = req.query;
  const code = rawCode === undefined ? 1000 : Number(rawCode);
  if (!Number.isInteger(code) || !(code === 1000 || (code >= 4000 && code <= 4999))) {
    throw new HttpError(400, 'code must be 1000 or 4000 to 4999');
  }
  const reason = rawReason === undefined ? 'closed by the application' : rawReason;
  if (typeof reason !== 'string' || Buffer.byteLength(reason) > 123) throw new HttpError(400, 'reason must be at most 123 bytes');
  return { code, reason };
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
