import { type CloseCode, type ErrorMessage, MessageType, topicStream } from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import type { PublishOptions } from '../broker.js';
import { classify, HandlerError } from '../errors.js';
import type { Core } from './context.js';
import type { ConnectContext, MessageContext, PublishContext, RpcContext, SubscribeContext, Verdict } from './ports.js';
import type { Session } from './session.js';

/**
 * One frame as a handler sees it. Its methods are bound, so a handler may destructure them
 * (`({ reply, data }) => reply(data)`).
 */
export class MessageRequest implements MessageContext {
  readonly connection: Session;
  readonly user: string;
  readonly claims: JWTPayload;
  readonly data: unknown;
  readonly token: string | undefined;
  readonly reply: (data: unknown) => boolean;
  readonly publish: (topic: string, data: unknown, options?: PublishOptions) => Promise<number>;
  readonly close: (code: CloseCode, reason: string) => void;

  constructor(core: Core, connection: Session, user: string, claims: JWTPayload, data: unknown, token?: string) {
    this.connection = connection;
    this.user = user;
    this.claims = claims;
    this.data = data;
    this.token = token;
    // Only while the user it answers is still the one bound: a slow handler must not reach whoever
    // authenticated on this socket after a logout.
    this.reply = (reply) => connection.user === user && connection.send(reply);
    this.publish = (topic, published, options) => core.delivery.publish({ topic }, published, topicStream(topic), options);
    this.close = (code, reason) => {
      if (connection.user === user) connection.close(applicationCloseCode(code), reason);
    };
  }
}

/** `subscribe` and `publish` requests: a topic, and for `publish` its payload. */
export class TopicRequest extends MessageRequest implements SubscribeContext, PublishContext {
  readonly topic: string;

  constructor(core: Core, connection: Session, user: string, claims: JWTPayload, topic: string, data?: unknown, token?: string) {
    super(core, connection, user, claims, data, token);
    this.topic = topic;
  }
}

export class RpcRequest extends MessageRequest implements RpcContext {
  readonly method: string;

  constructor(core: Core, connection: Session, user: string, claims: JWTPayload, method: string, data: unknown, token?: string) {
    super(core, connection, user, claims, data, token);
    this.method = method;
  }
}

export class ConnectRequest extends MessageRequest implements ConnectContext {
  readonly refresh: boolean;
  readonly expiresAt: number;

  constructor(core: Core, connection: Session, user: string, claims: JWTPayload, expiresAt: number, refresh: boolean, token?: string) {
    super(core, connection, user, claims, undefined, token);
    this.expiresAt = expiresAt;
    this.refresh = refresh;
  }
}

/** A verdict as `{allow, data}`; `data` only when the handler gave one. Anything else (undefined, null) refuses. */
export function decide(verdict: Verdict): { readonly allow: boolean; readonly data?: unknown } {
  if (typeof verdict === 'boolean') return { allow: verdict };
  return typeof verdict === 'object' && verdict !== null ? { ...verdict, allow: verdict.allow === true } : { allow: false };
}

/**
 * The `error` frame answering request `id` that a handler failed: a `HandlerError` says what the
 * client sees; anything else is `rejected` with `fallback` as its message (its detail stays in the log).
 */
export function errorFrame(error: unknown, id: string | undefined, fallback: string): ErrorMessage {
  const known = error instanceof HandlerError ? error : storeFailure(error);
  return {
    type: MessageType.Error,
    ...(id === undefined ? {} : { id }),
    code: known?.errorCode ?? 'rejected',
    message: known?.message ?? fallback,
    ...(known?.temporary ? { temporary: true } : {}),
    ...(known?.data === undefined ? {} : { data: known.data }),
  };
}

/** The broker or a store did not answer (503) or lost the outcome (504): temporary for the client. */
function storeFailure(error: unknown): HandlerError | undefined {
  const { httpStatus } = classify(error);
  return httpStatus === 503 || httpStatus === 504 ? new HandlerError('unavailable', 'service unavailable') : undefined;
}

/** A close code an application may send: `1000`, `1008`, `1011`, `1013` or `4000`-`4999`; else `RangeError`. */
export function applicationCloseCode(code: number): number {
  const sendable = code === 1000 || code === 1008 || code === 1011 || code === 1013 || (code >= 4000 && code <= 4999);
  if (!Number.isInteger(code) || !sendable) throw new RangeError(`close code must be 1000, 1008, 1011, 1013 or 4000-4999, got ${code}`);
  return code;
}
