import { type CloseCode, topicStream } from '@authsocket/protocol';
import type { PublishOptions } from '../broker.js';
import type { JWTPayload } from 'jose';
import type { Core } from './context.js';
import type { MessageContext, SubscribeContext } from './ports.js';
import type { Session } from './session.js';

/** One frame as a handler sees it: a class, so its methods live once on the prototype. */
export class MessageRequest implements MessageContext {
  readonly #core: Core;
  readonly connection: Session;
  readonly user: string;
  readonly claims: JWTPayload;
  readonly data: unknown;

  constructor(core: Core, connection: Session, user: string, claims: JWTPayload, data: unknown) {
    this.#core = core;
    this.connection = connection;
    this.user = user;
    this.claims = claims;
    this.data = data;
  }

  reply(data: unknown): boolean {
    return this.connection.send(data);
  }

  publish(topic: string, data: unknown, options?: PublishOptions): Promise<number> {
    return this.#core.delivery.publish({ topic }, data, topicStream(topic), options);
  }

  close(code: CloseCode, reason: string): void {
    this.connection.close(code, reason);
  }
}

export class SubscribeRequest extends MessageRequest implements SubscribeContext {
  readonly topic: string;

  constructor(core: Core, connection: Session, user: string, claims: JWTPayload, topic: string) {
    super(core, connection, user, claims, undefined);
    this.topic = topic;
  }
}
