import { LIMITS } from '@authsocket/protocol';
import type { Gateway, PublishOptions } from '@authsocket/server';
import { OutcomeUnknownError, StoreUnavailableError } from '@authsocket/server';
import { HttpError } from './http-errors.js';
import type { Logger } from './logger.js';

/** Largest JSON body the API accepts, in bytes; the WebSocket's own frame limit is 64 KiB too. */
export const API_BODY_LIMIT = 64 * 1024;
/** Messages in one `POST /api/messages`; more is refused 413 as a whole. */
export const MAX_BATCH = 1_000;
/** The batch endpoint's body limit in bytes: many messages, each still at most the WebSocket's 64 KiB. */
export const BATCH_BODY_LIMIT = 1024 * 1024;
const MAX_DATA_BYTES = 64 * 1024;
const MAX_USER_LENGTH = 256;
/** 1 to 255 visible ASCII characters: enough for a UUID or a hash, and safe in logs and Redis keys. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** What a route reads of a request, whichever HTTP layer parsed it. */
export interface ApiInput {
  /** The path's `:name` segments, decoded. */
  readonly params: Readonly<Record<string, string | undefined>>;
  /** The parsed JSON body (undefined without one). */
  readonly body: unknown;
  readonly query: Readonly<Record<string, unknown>>;
  /** A request header by lower-case name. */
  header(name: string): string | undefined;
}

/** One endpoint of the API: the one place its input is checked and its answer made. */
export interface ApiRoute {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Below `/api`, Express style (`/topics/:topic/messages`); also the metrics' `route` label. */
  readonly path: string;
  /** Largest body, in bytes. */
  readonly bodyLimit: number;
  /** The JSON answer (status 200); refusals throw an `HttpError` or a store error. */
  handle(input: ApiInput): Promise<unknown> | unknown;
}

export interface ApiRoutesOptions {
  /** This node's id, in every answer: the counts are this node's own. */
  readonly node: string;
  readonly logger: Logger;
}

/**
 * The application backend's API: push to a user, a topic or everyone; revoke a user; list a
 * user's connections (every node's) or look one up; list a topic's presence; many messages at once. Counts are this node's connections only (others
 * deliver too, uncounted): hence `...Locally`. A message sent is a debug line (thousands a second
 * at info would be most of the API's cost; `authsocket_api_requests_total` counts them); a revoke or
 * a close, rare and administrative, is an info line.
 */
export function createApiRoutes(gateway: Gateway, { node, logger }: ApiRoutesOptions): readonly ApiRoute[] {
  const route = (method: ApiRoute['method'], path: string, handle: ApiRoute['handle'], bodyLimit = API_BODY_LIMIT): ApiRoute => ({
    method,
    path,
    bodyLimit,
    handle,
  });
  return [
    route('POST', '/users/:user/messages', async (input) => {
      const user = userParam(input);
      const options = publishOptions(input);
      const deliveredLocally = await gateway.sendToUser(user, dataOf(input), options);
      logger.debug({ api: 'sendToUser', user, deliveredLocally, ...options }, 'api: message to user');
      return { deliveredLocally, node };
    }),
    route('POST', '/topics/:topic/messages', async (input) => {
      const topic = topicParam(input);
      const options = publishOptions(input);
      const deliveredLocally = await gateway.publish(topic, dataOf(input), options);
      logger.debug({ api: 'publish', topic, deliveredLocally, ...options }, 'api: message to topic');
      return { deliveredLocally, node };
    }),
    route('POST', '/broadcast', async (input) => {
      const options = publishOptions(input);
      const deliveredLocally = await gateway.broadcast(dataOf(input), options);
      logger.debug({ api: 'broadcast', deliveredLocally, ...options }, 'api: broadcast');
      return { deliveredLocally, node };
    }),
    route('POST', '/users/:user/revoke', async (input) => {
      const user = userParam(input);
      const closedLocally = await gateway.revokeUser(user);
      logger.info({ api: 'revokeUser', user, closedLocally }, 'api: user revoked');
      return { closedLocally, node };
    }),
    // The registry's list (every node's, with each token's `exp`); `connectedLocally` stays this node's own count.
    route('GET', '/users/:user/connections', async (input) => {
      const user = userParam(input);
      const connections = await gateway.connections(user);
      return { connections, count: connections.length, connectedLocally: gateway.connectionCount(user), node };
    }),
    route('GET', '/connections/:id', async (input) => {
      const record = await gateway.connection(connectionParam(input));
      if (record === undefined) throw new HttpError(404, 'no such connection');
      return record;
    }),
    // Presence is every node's (the presence store's), unlike the counts above.
    route('GET', '/topics/:topic/presence', async (input) => {
      const topic = topicParam(input);
      const { countOnly } = input.query;
      if (countOnly !== undefined && countOnly !== 'true' && countOnly !== 'false') throw new HttpError(400, 'countOnly must be true or false');
      if (!gateway.hasPresence(topic)) throw new HttpError(404, `topic '${topic.slice(0, 64)}' has no presence (see --presence, --presence-topics)`);
      if (countOnly === 'true') return { topic, count: await gateway.presenceCount(topic) };
      const members = await gateway.presence(topic);
      return { topic, count: members.length, members };
    }),
    // One connection, by the id the backend got in the proxy's identity envelope: on any node.
    route('POST', '/connections/:id/messages', async (input) => {
      const connection = connectionParam(input);
      const options = publishOptions(input);
      const deliveredLocally = await gateway.sendToConnection(connection, dataOf(input), options);
      logger.debug({ api: 'sendToConnection', connection, deliveredLocally, ...options }, 'api: message to connection');
      return { deliveredLocally, node };
    }),
    route('DELETE', '/connections/:id', async (input) => {
      const connection = connectionParam(input);
      const { code, reason } = closeOf(input);
      const closedLocally = await gateway.closeConnection(connection, code, reason);
      logger.info({ api: 'closeConnection', connection, code, closedLocally }, 'api: connection closed');
      return { closedLocally, node };
    }),
    // Many messages in one request, each published on its own: one failing never fails the others.
    route(
      'POST',
      '/messages',
      async (input) => {
        const messages = batchOf(input);
        const results = await Promise.all(messages.map((message) => publishOne(gateway, message, logger)));
        let deliveredLocally = 0;
        let failed = 0;
        for (const result of results) {
          if ('error' in result) failed++;
          else deliveredLocally += result.deliveredLocally;
        }
        logger.debug({ api: 'batch', messages: messages.length, failed, deliveredLocally }, 'api: batch of messages');
        return { results, node };
      },
      BATCH_BODY_LIMIT,
    ),
  ];
}

/** Where one message of a batch goes: the four audiences of the single-message endpoints. */
type Audience = { user: string } | { topic: string } | { connection: string } | { everyone: true };

interface BatchMessage {
  readonly to: Audience;
  readonly data: unknown;
  readonly options: PublishOptions;
}

type BatchResult = { deliveredLocally: number } | { error: 'unavailable' | 'outcome_unknown' | 'internal' };

/** The body of `POST /api/messages`, every message checked before any is published (400 names the first bad one). */
function batchOf(input: ApiInput): BatchMessage[] {
  const body: unknown = input.body;
  const list = typeof body === 'object' && body !== null ? (body as { messages?: unknown }).messages : undefined;
  if (!Array.isArray(list)) {
    throw new HttpError(400, 'expected Content-Type: application/json and a body like {"messages": [{"to": {...}, "data": ...}]}');
  }
  if (list.length > MAX_BATCH) throw new HttpError(413, `at most ${MAX_BATCH} messages per request`);
  return list.map((item: unknown, i) => {
    const at = `messages[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new HttpError(400, `${at}: expected {"to": {...}, "data": ...}`);
    const { to, idempotencyKey } = item as { to?: unknown; idempotencyKey?: unknown };
    if (!Object.hasOwn(item, 'data')) throw new HttpError(400, `${at}.data: missing`);
    const data = (item as { data: unknown }).data;
    if (data === undefined || Buffer.byteLength(JSON.stringify(data)) > MAX_DATA_BYTES) {
      throw new HttpError(400, `${at}.data: must be JSON of at most 64 KiB`);
    }
    if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(idempotencyKey))) {
      throw new HttpError(400, `${at}.idempotencyKey: must be 1 to 255 visible ASCII characters`);
    }
    return { to: audienceOf(to, `${at}.to`), data, options: idempotencyKey === undefined ? {} : { idempotencyKey } };
  });
}

function audienceOf(to: unknown, at: string): Audience {
  const keys = typeof to === 'object' && to !== null && !Array.isArray(to) ? Object.keys(to) : [];
  const value: unknown = keys.length === 1 ? (to as Record<string, unknown>)[keys[0] as string] : undefined;
  switch (keys.length === 1 ? keys[0] : undefined) {
    case 'user':
      if (typeof value !== 'string' || value.length === 0 || value.length > MAX_USER_LENGTH) {
        throw new HttpError(400, `${at}.user: must be 1 to ${MAX_USER_LENGTH} characters`);
      }
      return { user: value };
    case 'topic':
      if (typeof value !== 'string' || value.length === 0 || value.length > LIMITS.topicLength) {
        throw new HttpError(400, `${at}.topic: must be 1 to ${LIMITS.topicLength} characters`);
      }
      return { topic: value };
    case 'connection':
      if (typeof value !== 'string' || !CONNECTION_ID.test(value)) {
        throw new HttpError(400, `${at}.connection: must be the id the gateway gave the connection`);
      }
      return { connection: value };
    case 'everyone':
      if (value !== true) throw new HttpError(400, `${at}.everyone: must be true`);
      return { everyone: true };
    default:
      throw new HttpError(400, `${at}: expected {"user": ...}, {"topic": ...}, {"connection": ...} or {"everyone": true}`);
  }
}

/** One message of a batch, its failure an entry of the answer (the codes of the single endpoints' 503 and 504). */
async function publishOne(gateway: Gateway, { to, data, options }: BatchMessage, logger: Logger): Promise<BatchResult> {
  try {
    const deliveredLocally =
      'user' in to
        ? await gateway.sendToUser(to.user, data, options)
        : 'topic' in to
          ? await gateway.publish(to.topic, data, options)
          : 'connection' in to
            ? await gateway.sendToConnection(to.connection, data, options)
            : await gateway.broadcast(data, options);
    return { deliveredLocally };
  } catch (error) {
    if (error instanceof StoreUnavailableError) return { error: 'unavailable' };
    if (error instanceof OutcomeUnknownError) return { error: 'outcome_unknown' };
    logger.error({ api: 'batch', err: String(error) }, 'api: batch message failed');
    return { error: 'internal' };
  }
}

function dataOf(input: ApiInput): unknown {
  const body: unknown = input.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !Object.hasOwn(body, 'data')) {
    throw new HttpError(400, 'expected Content-Type: application/json and a body like {"data": ...}');
  }
  return (body as { data: unknown }).data;
}

/** `Idempotency-Key`: a retry with the same key (and audience) within the store's window publishes nothing. */
function publishOptions(input: ApiInput): PublishOptions {
  const key = input.header('idempotency-key');
  if (key === undefined) return {};
  if (!IDEMPOTENCY_KEY.test(key)) throw new HttpError(400, 'Idempotency-Key must be 1 to 255 visible ASCII characters');
  return { idempotencyKey: key };
}

/** A connection id as the gateway makes them (a UUID); anything else cannot name a connection. */
const CONNECTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function connectionParam(input: ApiInput): string {
  const id = input.params.id;
  if (typeof id !== 'string' || !CONNECTION_ID.test(id)) throw new HttpError(400, 'connection id must be the id the gateway gave the connection');
  return id;
}

/** `?code=4000-4999|1000&reason=…` (default 1000, "closed by the application"). */
function closeOf(input: ApiInput): { code: number; reason: string } {
  const { code: rawCode, reason: rawReason } = input.query;
  const code = rawCode === undefined ? 1000 : Number(rawCode);
  if (!Number.isInteger(code) || !(code === 1000 || (code >= 4000 && code <= 4999))) {
    throw new HttpError(400, 'code must be 1000 or 4000 to 4999');
  }
  const reason = rawReason === undefined ? 'closed by the application' : rawReason;
  if (typeof reason !== 'string' || Buffer.byteLength(reason) > 123) throw new HttpError(400, 'reason must be at most 123 bytes');
  return { code, reason };
}

function userParam(input: ApiInput): string {
  const user = input.params.user;
  if (typeof user !== 'string' || user.length === 0 || user.length > MAX_USER_LENGTH) {
    throw new HttpError(400, `user must be 1 to ${MAX_USER_LENGTH} characters`);
  }
  return user;
}

function topicParam(input: ApiInput): string {
  const topic = input.params.topic;
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > LIMITS.topicLength) {
    throw new HttpError(400, `topic must be 1 to ${LIMITS.topicLength} characters`);
  }
  return topic;
}
