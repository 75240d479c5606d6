import { randomUUID } from 'node:crypto';
import { isPlainObject } from '@authsocket/protocol';
import { type Clock, type Gateway, type MessageEvent, RevokedError, TokenError } from '@authsocket/server';
import express, { type Request, Router } from 'express';
import { DEMO_TOPIC_PREFIX, DEMO_USERS } from './demo-users.js';
import { HttpError } from './http-errors.js';
import type { Logger } from './logger.js';

/**
 * What the demo web app's own backend would do, played by the gateway in demo mode (never outside
 * it): post chat messages under the sender's authenticated name, and push a notification to the
 * logged-in user as a backend does through `POST /api/users/:user/messages` — without the browser
 * ever holding the API key.
 */

/** Action a client sends as a `message` to post in a chat room: `{type, payload: {topic, text}}`. */
export const CHAT_SEND = 'chat/send';
/** Action the gateway publishes on the room's topic: `{type, payload: {id, topic, from, text, at}}`. */
export const CHAT_POSTED = 'chat/posted';
/** Action pushed to a user by `POST /demo/notify`: `{type, payload: {id, text, at, via}}`. */
export const NOTIFICATION_ADDED = 'notifications/added';
export const MAX_CHAT_TEXT_LENGTH = 500;
export const MAX_NOTIFICATION_TEXT_LENGTH = 200;

export interface DemoBackendOptions {
  readonly gateway: Pick<Gateway, 'publish' | 'sendToUser' | 'verifyToken'>;
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * The gateway's `onMessage` in demo mode: a `chat/send` action from an authenticated socket is
 * published on its `chat:*` topic as `chat/posted`, with `from` set to the socket's user — the
 * sender's name comes from its token, never from the message. Anything else is rejected.
 */
export function demoChatHandler({ logger, clock }: Omit<DemoBackendOptions, 'gateway'>): (event: MessageEvent) => Promise<void> {
  return async ({ user, data, publish }) => {
    const { topic, text } = chatSend(data);
    const posted = { type: CHAT_POSTED, payload: { id: randomUUID(), topic, from: user, text, at: clock.now() } };
    const deliveredLocally = await publish(topic, posted);
    logger.debug({ user, topic, deliveredLocally }, 'demo: chat message');
  };
}

function chatSend(data: unknown): { topic: string; text: string } {
  const action = isPlainObject(data) ? data : {};
  const payload = isPlainObject(action.payload) ? action.payload : {};
  const { topic, text } = payload;
  if (action.type !== CHAT_SEND) throw new Error(`demo: only '${CHAT_SEND}' messages are handled`);
  if (typeof topic !== 'string' || !topic.startsWith(DEMO_TOPIC_PREFIX) || topic.length > 256) {
    throw new Error(`demo: '${CHAT_SEND}' needs a topic starting with '${DEMO_TOPIC_PREFIX}'`);
  }
  const trimmed = typeof text === 'string' ? text.trim() : '';
  if (trimmed.length === 0 || trimmed.length > MAX_CHAT_TEXT_LENGTH) {
    throw new Error(`demo: '${CHAT_SEND}' needs a text of 1 to ${MAX_CHAT_TEXT_LENGTH} characters`);
  }
  return { topic, text: trimmed };
}

/**
 * `POST /demo/notify` with `Authorization: Bearer <the user's jwt>` and an optional `{"text": ...}`:
 * pushes a `notifications/added` action to that user's every connection, exactly as a backend
 * would with `POST /api/users/:user/messages` and the API key. Answers `{deliveredLocally}`: this node's connections that got it.
 */
export function createDemoBackend({ gateway, logger, clock }: DemoBackendOptions): Router {
  const router = Router();
  router.post('/demo/notify', express.json({ limit: '4kb' }), async (req, res) => {
    const user = await bearerUser(req);
    if (user === undefined) {
      return void res.set('WWW-Authenticate', 'Bearer').status(401).json({ error: 'unauthorized' });
    }
    const text = notificationText(req) ?? `Hello ${user}: this was pushed to you by the backend.`;
    const notification = {
      type: NOTIFICATION_ADDED,
      payload: { id: randomUUID(), text, at: clock.now(), via: 'POST /demo/notify' },
    };
    const deliveredLocally = await gateway.sendToUser(user, notification);
    logger.info({ user, deliveredLocally }, 'demo: notification');
    res.set('Cache-Control', 'no-store').json({ deliveredLocally });
  });

  async function bearerUser(req: Request): Promise<string | undefined> {
    const bearer = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer === undefined) return undefined;
    try {
      const { user } = await gateway.verifyToken(bearer);
      return DEMO_USERS.has(user) ? user : undefined;
    } catch (error) {
      if (error instanceof TokenError || error instanceof RevokedError) return undefined;
      throw error;
    }
  }

  return router;
}

function notificationText(req: Request): string | undefined {
  const body: unknown = req.body;
  if (body === undefined || (isPlainObject(body) && body.text === undefined)) return undefined;
  const text = isPlainObject(body) && typeof body.text === 'string' ? body.text.trim() : '';
  if (text.length === 0 || text.length > MAX_NOTIFICATION_TEXT_LENGTH) {
    throw new HttpError(400, `expected a body like {"text": "..."} of 1 to ${MAX_NOTIFICATION_TEXT_LENGTH} characters, or none`);
  }
  return text;
}

