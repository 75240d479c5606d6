import { type ClientMessage, CloseCode, MessageType, type StreamPosition, topicStream } from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import { CorePart } from './context.js';
import { isPromise } from './frames.js';
import { MessageRequest } from './message-context.js';
import type { Session } from './session.js';

/** What each client frame does, once it is parsed and its turn has come. */
export class Commands extends CorePart {

  handle(session: Session, frame: ClientMessage): void | Promise<void> {
    const { auth } = this.core;
    switch (frame.type) {
      case MessageType.Ping:
        return session.writeFrame({ type: MessageType.Pong, ...(frame.id === undefined ? {} : { id: frame.id }) });
      case MessageType.Auth:
        return auth.onAuth(session, frame.token, frame.resume);
      case MessageType.Logout:
        // Even while held: logging out must stop deliveries at once, not after a reauth.
        if (session.state === 'pending') return auth.unauthorized(session, 'auth', 'not_authenticated', 'authenticate first');
        return this.#logout(session);
      default:
        break;
    }
    if (session.state === 'held') {
      // The token lapsed: keep the client's frames, in order, for after its reauth.
      if (!session.holdInbound(frame, this.options.maxHeldMessages)) {
        session.close(CloseCode.SlowConsumer, 'too many frames while awaiting reauth');
      }
      return;
    }
    const perMessage =
      this.options.perMessageAuth && (frame.type === MessageType.Message || frame.type === MessageType.Publish);
    if (perMessage) {
      if (frame.token === undefined) return auth.unauthorized(session, 'per_message', 'missing', 'token required');
      // Fast path: a cached token of this session's user, checked without a promise or a pause.
      const claims = auth.current(session, frame.token);
      if (claims !== undefined) return this.#dispatch(session, frame, claims);
      return auth.withMessageToken(session, frame.token, (verified) => this.#dispatch(session, frame, verified));
    }
    if (session.state !== 'authenticated') {
      return auth.unauthorized(session, 'auth', 'not_authenticated', 'authenticate first');
    }
    return this.#dispatch(session, frame, session.claims as JWTPayload);
  }

  #dispatch(session: Session, frame: ClientMessage, claims: JWTPayload): void | Promise<void> {
    switch (frame.type) {
      case MessageType.Message:
        return this.#message(session, frame.data, frame.id, claims);
      case MessageType.Subscribe:
        return this.#subscribe(session, frame.topic, frame.id, frame.since, claims);
      case MessageType.Unsubscribe:
        this.core.registry.leaveTopic(session, frame.topic);
        session.floors.delete(topicStream(frame.topic));
        return this.#ack(session, frame.id);
      case MessageType.Publish:
        return this.#publish(session, frame.topic, frame.data, frame.id);
      default:
        return;
    }
  }

  #message(session: Session, data: unknown, id: string | undefined, claims: JWTPayload): void {
    const { handler } = this.core;
    if (handler.onMessage === undefined) return this.#ack(session, id);
    let result: void | Promise<void>;
    try {
      result = handler.onMessage(new MessageRequest(this.core, session, session.user as string, claims, data));
    } catch (error) {
      return this.#rejected(session, id, error);
    }
    // The application's own async work does not hold up the next frame; only the ack waits for it.
    if (isPromise(result)) {
      result.then(
        () => this.#ack(session, id),
        (error: unknown) => this.#rejected(session, id, error),
      );
    } else {
      this.#ack(session, id);
    }
  }

  #rejected(session: Session, id: string | undefined, error: unknown): void {
    this.options.logger.warn({ id: session.id, err: String(error) }, 'onMessage rejected a message');
    session.writeFrame({
      type: MessageType.Error,
      ...(id === undefined ? {} : { id }),
      code: 'rejected',
      message: 'message rejected',
    });
  }

  #ack(session: Session, id: string | undefined): void {
    if (id !== undefined) session.writeFrame({ type: MessageType.Ack, id });
  }

  #forbidden(session: Session, id: string | undefined, message: string): void {
    session.writeFrame({ type: MessageType.Error, ...(id === undefined ? {} : { id }), code: 'forbidden', message });
  }

  async #subscribe(
    session: Session,
    topic: string,
    id: string | undefined,
    since: StreamPosition | undefined,
    claims: JWTPayload,
  ): Promise<void> {
    const user = session.user as string;
    const allowed = await this.core.auth.maySubscribe(session, claims, topic);
    // Identity may have changed (logout, close) while authorize ran.
    if (session.user !== user || session.isClosed()) return;
    if (!allowed) return this.#forbidden(session, id, `not allowed to subscribe to '${topic.slice(0, 64)}'`);
    const stream = topicStream(topic);
    if (session.topics.has(topic)) {
      // Already reading it (a client re-subscribing after a resume): nothing changes. A new start
      // would move the connection's position under publications still on their way to this node
      // (losing them) or back over ones it has (sending them twice). The ack says where it stands.
      const position = session.floors.get(stream);
      if (id !== undefined) {
        session.writeFrame({ type: MessageType.Ack, id, ...(position ? { streams: { [stream]: position } } : {}) });
      }
      return;
    }
    const { recovery, registry } = this.core;
    const recovering = recovery.recover(session, new Map([[stream, since]]), () => registry.joinTopic(session, topic));
    // Awaited only when it is a promise: after a synchronous join, a yield here would let a live
    // message overtake the ack that reports the position before it.
    const recovered = isPromise(recovering) ? await recovering : recovering;
    if (session.user !== user || session.isClosed()) return;
    if (id !== undefined) {
      session.writeFrame({ type: MessageType.Ack, id, ...(recovered.states ? { streams: recovered.states } : {}) });
    }
    recovery.finish(session, recovered);
  }

  async #publish(session: Session, topic: string, data: unknown, id: string | undefined): Promise<void> {
    const user = session.user as string;
    const allowed = await this.options.authorize(user, 'publish', topic);
    if (session.user !== user || session.isClosed()) return;
    if (!allowed) return this.#forbidden(session, id, `not allowed to publish to '${topic.slice(0, 64)}'`);
    await this.core.delivery.publish({ topic }, data, topicStream(topic), undefined);
    this.#ack(session, id);
  }

  #logout(session: Session): void {
    session.logout();
    session.writeFrame({ type: MessageType.LoggedOut });
    if (this.options.closeOnLogout) return session.close(CloseCode.Normal, 'logged out');
    this.core.expiry.armAuthTimeout(session);
  }
}
