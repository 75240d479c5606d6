import { type ClientMessage, CloseCode, MessageType, type StreamPosition, topicStream } from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import { CorePart } from './context.js';
import { isPromise } from './frames.js';
import { HandlerError } from '../errors.js';
import { errorFrame, MessageRequest, RpcRequest } from './message-context.js';
import type { Admission } from './presence.js';
import type { Recovered } from './recovery.js';
import { type Access, refusal } from './topic-access.js';
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
      this.options.perMessageAuth &&
      (frame.type === MessageType.Message || frame.type === MessageType.Publish || frame.type === MessageType.Rpc);
    if (perMessage) {
      const { token } = frame;
      if (token === undefined) return auth.unauthorized(session, 'per_message', 'missing', 'token required');
      // Fast path: a cached token of this session's user, checked without a promise or a pause.
      const claims = auth.current(session, token);
      if (claims !== undefined) return this.#dispatch(session, frame, claims, token);
      return auth.withMessageToken(session, token, (verified) => this.#dispatch(session, frame, verified, token));
    }
    if (session.state !== 'authenticated') {
      return auth.unauthorized(session, 'auth', 'not_authenticated', 'authenticate first');
    }
    return this.#dispatch(session, frame, session.claims as JWTPayload);
  }

  #dispatch(session: Session, frame: ClientMessage, claims: JWTPayload, token?: string): void | Promise<void> {
    switch (frame.type) {
      case MessageType.Message:
        return this.#message(session, frame.data, frame.id, claims, token);
      case MessageType.Rpc:
        return this.#rpc(session, frame.id, frame.method, frame.data, claims, token);
      case MessageType.Subscribe:
        return this.#subscribe(session, frame.topic, frame.id, frame.since, claims, frame.token);
      case MessageType.Unsubscribe:
        this.core.access.leave(session, frame.topic);
        return this.#ack(session, frame.id);
      case MessageType.Publish:
        return this.#publish(session, frame.topic, frame.data, frame.id, claims, token);
      case MessageType.Presence:
        return this.core.presence.query(session, frame, claims);
      default:
        return;
    }
  }

  #message(session: Session, data: unknown, id: string | undefined, claims: JWTPayload, token: string | undefined): void {
    const { handler } = this.core;
    if (handler.onMessage === undefined) return this.#ack(session, id);
    this.#settle(
      session,
      id,
      'message',
      () => handler.onMessage?.(new MessageRequest(this.core, session, session.user as string, claims, data, token)),
      // What the handler resolved with (a queue's entry id) is the ack's `data`.
      (result) => this.#ack(session, id, result),
    );
  }

  #rpc(session: Session, id: string, method: string, data: unknown, claims: JWTPayload, token: string | undefined): void {
    const { onRpc } = this.core.handler;
    if (onRpc === undefined) return session.writeFrame(errorFrame(new HandlerError('not_found', 'no rpc handler'), id, ''));
    const request = new RpcRequest(this.core, session, session.user as string, claims, method, data, token);
    this.#settle(session, id, 'rpc', () => onRpc.call(this.core.handler, request), (result) => {
      session.writeFrame({ type: MessageType.Result, id, data: result ?? null });
    });
  }

  /**
   * Runs a handler's step for request `id` and answers with `done` or an `error` frame. The
   * handler's own async work does not hold up the next frame; only the answer waits for it.
   */
  #settle<T>(session: Session, id: string | undefined, what: string, step: () => T | Promise<T>, done: (result: T) => void): void {
    const user = session.user;
    const answer = (result: T) => {
      if (session.user !== user || session.isClosed()) return;
      try {
        done(result);
      } catch (error) {
        // The answer cannot be sent as it is (not JSON: a cycle, a BigInt): an error frame instead.
        this.#failed(session, id, what, error);
      }
    };
    let result: T | Promise<T>;
    try {
      result = step();
    } catch (error) {
      return this.#failed(session, id, what, error);
    }
    if (isPromise(result)) {
      result.then(answer, (error: unknown) => this.#failed(session, id, what, error));
    } else {
      answer(result);
    }
  }

  /** A handler said no, or failed: the client gets an `error` frame, the log says why (never a token). */
  #failed(session: Session, id: string | undefined, what: string, error: unknown): void {
    if (session.isClosed()) return;
    if (!(error instanceof HandlerError)) this.options.logger.warn({ id: session.id, err: String(error) }, `${what} handler failed`);
    try {
      session.writeFrame(errorFrame(error, id, `${what} rejected`));
    } catch {
      // A HandlerError whose `data` is not JSON: the refusal without it.
      session.writeFrame(errorFrame(undefined, id, `${what} rejected`));
    }
  }

  #ack(session: Session, id: string | undefined, data?: unknown): void {
    if (id !== undefined) session.writeFrame({ type: MessageType.Ack, id, ...(data === undefined ? {} : { data }) });
  }

  #refused(session: Session, id: string | undefined, access: Access, message: string): void {
    session.writeFrame(errorFrame(refusal(access, message), id, message));
  }

  async #subscribe(
    session: Session,
    topic: string,
    id: string | undefined,
    since: StreamPosition | undefined,
    claims: JWTPayload,
    token: string | undefined,
  ): Promise<void> {
    const user = session.user as string;
    let verdict: Access;
    // A subscription token grants the topic on its own, until its `exp`.
    let tokenExpiresAt: number | undefined;
    try {
      if (token === undefined && session.grantOf(topic) === 'claim') {
        // Joined from the token's own `subscribeClaim`: a client confirming it is not refused.
        verdict = { allow: true };
      } else if (token === undefined) {
        verdict = await this.core.access.may(session, claims, 'subscribe', topic);
      } else {
        const verified = await this.core.subscriptionTokens.verify(session, topic, token);
        if (verified instanceof HandlerError) throw verified;
        tokenExpiresAt = verified;
        verdict = { allow: true };
      }
    } catch (error) {
      return this.#failed(session, id, 'subscribe', error);
    }
    // Identity may have changed (logout, close) while authorize ran.
    if (session.user !== user || session.isClosed()) return;
    if (!verdict.allow) return this.#refused(session, id, verdict, `not allowed to subscribe to '${topic.slice(0, 64)}'`);
    const extra = verdict.data === undefined ? {} : { data: verdict.data };
    const stream = topicStream(topic);
    const held = session.grantOf(topic);
    const grant = () => {
      if (tokenExpiresAt !== undefined) return this.core.subscriptionTokens.grant(session, topic, tokenExpiresAt);
      return held === 'claim' ? held : verdict.byPermissions ? 'permissions' : undefined;
    };
    if (session.topics.has(topic)) {
      // Already reading it (a client re-subscribing after a resume, or renewing its subscription
      // token): only how it is held changes. A new start would move the connection's position under
      // publications still on their way to this node (losing them) or back over ones it has
      // (sending them twice). The ack says where it stands. A token renews only a token grant it
      // outlasts: a topic the claim, the permissions or a handler hold stays theirs, and an earlier
      // `exp` never shortens a grant.
      const current = session.grantOf(topic);
      if (tokenExpiresAt === undefined || (typeof current === 'object' && tokenExpiresAt > current.expiresAt)) session.grant(topic, grant());
      const position = session.floors.get(stream);
      if (id !== undefined) {
        session.writeFrame({ type: MessageType.Ack, id, ...(position ? { streams: { [stream]: position } } : {}), ...extra });
      }
      return;
    }
    const { presence, recovery, registry } = this.core;
    const connection = session.id;
    const listed = presence.has(topic);
    if (listed && !(await this.#enterPresence(session, topic, id))) return;
    const join = () => {
      // The history read may have taken a while: a session gone meanwhile joins nothing.
      if (session.isClosed() || session.id !== connection) return listed ? presence.withdraw(topic, connection) : undefined;
      registry.joinTopic(session, topic);
      session.grant(topic, grant());
    };
    let recovered: Recovered;
    try {
      const recovering = recovery.recover(session, new Map([[stream, since]]), join);
      // Awaited only when it is a promise: after a synchronous join, a yield here would let a live
      // message overtake the ack that reports the position before it.
      recovered = isPromise(recovering) ? await recovering : recovering;
    } catch (error) {
      // The broker failed before the join: the admitted entry would outlive the subscription.
      if (listed && !session.topics.has(topic)) presence.withdraw(topic, connection);
      throw error;
    }
    if (session.user !== user || session.isClosed()) return;
    if (id !== undefined) {
      session.writeFrame({ type: MessageType.Ack, id, ...(recovered.states ? { streams: recovered.states } : {}), ...extra });
    }
    // After the ack: the joining connection gets its own `join` too (as Centrifugo's does), after it knows it is in.
    presence.announce(session, topic, 'join');
    recovery.finish(session, recovered);
  }

  /**
   * A subscribe's entry into the topic's presence, within its cap. False when it may not go on: the
   * topic is full (`limit_exceeded`), the store did not answer (`unavailable`), or the session is gone.
   */
  async #enterPresence(session: Session, topic: string, id: string | undefined): Promise<boolean> {
    let admission: Admission;
    try {
      admission = await this.core.presence.admit(session, topic);
    } catch (error) {
      this.#failed(session, id, 'subscribe', error);
      return false;
    }
    if (admission === 'full') {
      const refusal = new HandlerError('limit_exceeded', `topic '${topic.slice(0, 64)}' has the most members allowed`);
      session.writeFrame(errorFrame(refusal, id, ''));
    }
    return admission === 'joined';
  }

  async #publish(session: Session, topic: string, data: unknown, id: string | undefined, claims: JWTPayload, token: string | undefined): Promise<void> {
    const user = session.user as string;
    const { onPublish } = this.core.handler;
    let verdict: Access;
    try {
      verdict = await this.core.access.may(session, claims, 'publish', topic, data, token);
    } catch (error) {
      return this.#failed(session, id, 'publish', error);
    }
    if (session.user !== user || session.isClosed()) return;
    if (!verdict.allow) return this.#refused(session, id, verdict, `not allowed to publish to '${topic.slice(0, 64)}'`);
    // An allowing verdict with `data` replaces the payload (a backend that moderates or enriches it).
    const payload = onPublish !== undefined && 'data' in verdict && verdict.data !== undefined ? verdict.data : data;
    try {
      await this.core.delivery.publish({ topic }, payload, topicStream(topic), undefined);
    } catch (error) {
      return this.#failed(session, id, 'publish', error);
    }
    this.#ack(session, id);
  }

  #logout(session: Session): void {
    session.logout();
    session.writeFrame({ type: MessageType.LoggedOut });
    if (this.options.closeOnLogout) return session.close(CloseCode.Normal, 'logged out');
    this.core.expiry.armAuthTimeout(session);
  }
}
