import {
  CloseCode,
  MessageType,
  type StreamPosition,
  type StreamState,
  TOPIC_STREAM_PREFIX,
  topicStream,
  userStream,
} from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import { classify, HandlerError } from '../errors.js';
import type { AuthMethod, AuthStage, Identity } from '../events.js';
import type { VerifiedToken } from '../token-verifier.js';
import { CorePart } from './context.js';
import { isPromise } from './frames.js';
import { reportRefusal } from './refusals.js';
import { streamStates } from './recovery.js';
import type { ConnectResult } from './ports.js';
import type { Session, TopicGrant } from './session.js';
import { applicationCloseCode, ConnectRequest } from './message-context.js';
import { MalformedClaim } from '../permissions.js';
import type { Access } from './topic-access.js';

/** Authentication on an open socket: `auth` frames, reauth, per-message tokens, and binding identities. */
export class Auth extends CorePart {

  /** An `auth` frame: a first authentication, or a reauth of the same user. */
  async onAuth(
    session: Session,
    token: string,
    resume: Readonly<Record<string, StreamPosition>> | undefined,
  ): Promise<void> {
    const wait = session.authAttempts.hit(this.options.authRateLimit, this.options.clock.now());
    if (wait > 0) return this.core.inbound.rateLimited(session, wait);
    let verified: VerifiedToken;
    try {
      verified = await this.core.identity.verify(token);
    } catch (error) {
      return this.#refuse(session, 'auth', error);
    }
    if (session.isClosed() || !this.#isSameUser(session, verified.user, 'auth')) return;
    // Per-message mode: the backend may verify the token itself, on connect as on every message.
    const forwarded = this.options.perMessageAuth ? token : undefined;
    await this.bind(session, verified, session.user === undefined ? 'message' : 'reauth', resume, forwarded);
  }

  /**
   * Per-message mode's fast path: the claims of `token` when it is this authenticated session's
   * user's, already verified and cached, no later expiry to adopt, and the revocation store answers
   * synchronously. Undefined means: take `withMessageToken`.
   */
  current(session: Session, token: string): JWTPayload | undefined {
    if (session.state !== 'authenticated') return undefined;
    const hit = this.core.perMessage.peek(token);
    if (
      hit !== undefined &&
      hit.user === session.user &&
      hit.expiresAt <= (session.expiresAt as number) &&
      this.core.identity.isConnectionToken(hit) &&
      this.core.identity.isCurrentNow(hit) === true
    ) {
      return hit.claims;
    }
    return undefined;
  }

  /** Per-message mode: verify the frame's token (cached), then run `next` with its claims. */
  async withMessageToken(
    session: Session,
    token: string,
    next: (claims: JWTPayload) => void | Promise<void>,
  ): Promise<void> {
    let verified: VerifiedToken;
    try {
      verified = await this.core.perMessage.verify(token);
      this.core.identity.assertConnectionToken(verified);
      await this.core.identity.assertCurrent(verified);
    } catch (error) {
      return this.#refuse(session, 'per_message', error);
    }
    if (session.isClosed() || !this.#isSameUser(session, verified.user, 'per_message')) return;
    if (session.state === 'pending') {
      await this.bind(session, verified, 'per_message', undefined, token);
      if (session.isClosed()) return;
    } else if (verified.expiresAt > (session.expiresAt ?? 0)) {
      // A fresher token on a message extends the connection's identity, as seed 004 describes.
      session.extend(verified.expiresAt);
      this.core.expiry.schedule(session);
    }
    return next(verified.claims);
  }

  /** Closes `4401` and reports where and why. */
  unauthorized(session: Session, stage: AuthStage, reason: string, message: string): void {
    this.refused(session, stage, reason);
    session.close(CloseCode.Unauthorized, message);
  }

  /** True (and the session closed `4409`) when `user` already holds the most connections allowed here. */
  #capped(session: Session, user: string): boolean {
    if ((this.core.registry.ofUser(user)?.size ?? 0) < this.options.maxConnectionsPerUser) return false;
    this.refused(session, 'auth', 'too_many_connections');
    session.close(CloseCode.TooManyConnections, 'too many connections for this user');
    return true;
  }

  /** Reports a refusal on an open socket once: event and log line, with the address and connection id. */
  refused(session: Session, stage: AuthStage, reason: string, error?: unknown): void {
    reportRefusal(this.core.events, this.options.logger, {
      stage,
      reason,
      address: session.remoteAddress,
      connection: session.id,
      // Only a user a verified credential proved (the bound one, or the ticket's in two-layer mode).
      user: session.user ?? session.ticketUser,
      error,
    });
  }

  /** A socket keeps one user: the one bound, or its ticket's in two-layer mode. Else `4403`. */
  #isSameUser(session: Session, user: string, stage: AuthStage): boolean {
    const expected = session.user ?? session.ticketUser;
    if (expected === undefined || expected === user) return true;
    this.refused(session, stage, 'user_mismatch');
    session.close(CloseCode.Forbidden, 'token is for a different user');
    return false;
  }

  #refuse(session: Session, stage: AuthStage, error: unknown): void {
    if (session.isClosed()) return;
    const refusal = classify(error);
    // 503: an outage (store, IdP keys), closed 1011 so the client backs off and keeps its token.
    if (refusal.httpStatus !== 503 && refusal.httpStatus !== 401) throw error;
    this.refused(session, stage, refusal.reason, error);
    session.close(refusal.closeCode, refusal.message);
  }

  /**
   * Binds an identity to the session and starts its expiry policy. On a reauth of the same user the
   * socket carries on (held deliveries flushed in order); on a first bind the user's stream, and any
   * resumed topic streams, are recovered from history.
   */
  async bind(
    session: Session,
    identity: Identity,
    method: AuthMethod,
    resume: Readonly<Record<string, StreamPosition>> | undefined,
    token?: string,
  ): Promise<void> {
    const isNew = session.user === undefined;
    // Checked here so that a capped user costs no backend call, and again where the session joins
    // the user's index: binds of one user in flight at once must not all pass.
    if (isNew && this.#capped(session, identity.user)) return;
    const connecting = this.#connect(session, identity, !isNew, token);
    // Awaited only when there is a handler: without one, binding stays free of a yield.
    const connected = isPromise(connecting) ? await connecting : connecting;
    if (connected === false || session.isClosed()) return;
    // After the await: the token may have expired meanwhile and the session be holding deliveries.
    const wasHeld = session.state === 'held';
    session.bind(identity);
    const { events, expiry, registry } = this.core;
    const authOk = {
      type: MessageType.AuthOk,
      user: identity.user,
      expiresAt: identity.expiresAt,
      ...(connected?.data === undefined ? {} : { data: connected.data }),
    } as const;
    if (!isNew) {
      // In band: this socket missed nothing, what it did not get is in its held queue.
      session.writeFrame(authOk);
      // The new claims may allow less: topics the permissions (or the claim) held are checked again,
      // before the held deliveries go out (none of a topic left goes with them).
      this.core.access.recheck(session);
      // After auth_ok, so a warning for a short-lived token follows the confirmation it is about.
      expiry.schedule(session);
      if (wasHeld) session.release();
      events.emit('reauthenticated', { connection: session, latencyMs: session.reauthLatency(this.options.clock.now(), wasHeld) });
      events.emit('authenticated', { connection: session, method });
      return;
    }
    const own = userStream(identity.user);
    const wanted = new Map<string, StreamPosition | undefined>([[own, resume?.[own]]]);
    // Topics the backend subscribes the connection to on connect: joined like a subscribe without `since`.
    for (const topic of connected?.topics ?? []) if (!wanted.has(topicStream(topic))) wanted.set(topicStream(topic), resume?.[topicStream(topic)]);
    // How each joined topic is held, for the re-checks of a later reauth (see `TopicGrant`).
    let grants: Map<string, TopicGrant> | undefined;
    const claimed = this.core.access.claimedTopics(identity.claims);
    for (const topic of claimed instanceof MalformedClaim ? [] : claimed) {
      if (wanted.has(topicStream(topic))) continue;
      wanted.set(topicStream(topic), resume?.[topicStream(topic)]);
      (grants ??= new Map()).set(topic, 'claim');
    }
    let forbidden: Record<string, StreamState> | undefined;
    for (const [stream, position] of resume ? Object.entries(resume) : []) {
      if (wanted.has(stream)) continue;
      const topic = stream.startsWith(TOPIC_STREAM_PREFIX) ? stream.slice(TOPIC_STREAM_PREFIX.length) : undefined;
      const access = topic !== undefined && topic.length > 0 ? await this.#mayResume(session, identity.claims, topic) : undefined;
      if (topic !== undefined && access?.allow === true) {
        wanted.set(stream, position);
        if (access.byPermissions) (grants ??= new Map()).set(topic, 'permissions');
      } else {
        // Resume re-checks authorization: a stream this user may not read yields nothing.
        (forbidden ??= streamStates())[stream] = { recovered: false };
      }
      if (session.isClosed()) return;
    }
    const recovering = this.core.recovery.recover(session, wanted, () => {
      // The broker's position read may have taken a while: a socket closed meanwhile joins no index.
      if (session.isClosed() || session.user !== identity.user) return;
      if (this.#capped(session, identity.user)) return;
      registry.addUser(session, identity.user);
      this.core.listing.listed(session);
      for (const stream of wanted.keys()) {
        if (!stream.startsWith(TOPIC_STREAM_PREFIX)) continue;
        const topic = stream.slice(TOPIC_STREAM_PREFIX.length);
        registry.joinTopic(session, topic);
        const grant = grants?.get(topic);
        if (grant !== undefined) session.grant(topic, grant);
        // Past the presence cap: a resume restores a subscription, a server-side topic is the backend's call.
        this.core.presence.enter(session, topic);
      }
    });
    const recovered = isPromise(recovering) ? await recovering : recovering;
    if (session.isClosed() || session.user !== identity.user) return;
    const streams = recovered.states && forbidden ? { ...recovered.states, ...forbidden } : recovered.states;
    session.writeFrame(streams ? { ...authOk, streams } : authOk);
    if (claimed instanceof MalformedClaim) {
      // The connection stays: only the topics the claim would have joined are missing, and it says why.
      this.options.logger.warn({ id: session.id, claim: this.options.subscribeClaim }, claimed.message);
      session.writeFrame({ type: MessageType.Error, code: 'forbidden', message: claimed.message });
    }
    for (const topic of session.topics) this.core.presence.announce(session, topic, 'join');
    expiry.schedule(session);
    this.core.recovery.finish(session, recovered);
    events.emit('authenticated', { connection: session, method });
  }

  /**
   * The handler's `onConnect` for an identity about to be bound: what it adds, or false when it
   * refused (the session is then closed). A refresh the backend could not answer keeps the
   * verified token: a backend outage must not log valid users out.
   */
  #connect(
    session: Session,
    identity: Identity,
    refresh: boolean,
    token: string | undefined,
  ): ConnectResult | undefined | false | Promise<ConnectResult | undefined | false> {
    const { handler } = this.core;
    if (handler.onConnect === undefined) return undefined;
    const request = new ConnectRequest(this.core, session, identity.user, identity.claims, identity.expiresAt, refresh, token);
    const refused = (error: unknown): false | undefined => {
      if (session.isClosed()) return false;
      const known = error instanceof HandlerError ? error : undefined;
      if (refresh && (known === undefined || known.temporary)) {
        this.options.logger.warn({ id: session.id, err: String(error) }, 'refresh handler failed: keeping the verified token');
        return undefined;
      }
      if (known === undefined) this.options.logger.warn({ id: session.id, err: String(error) }, 'connect handler failed');
      this.refused(session, 'auth', known ? `handler_${known.errorCode}` : 'handler_failed');
      session.close(known ? sendableCloseCode(known.closeCode) : CloseCode.InternalError, known?.message ?? 'internal error');
      return false;
    };
    try {
      const result = handler.onConnect(request);
      if (!isPromise(result)) return result ?? undefined;
      return result.then((value) => value ?? undefined, refused);
    } catch (error) {
      return refused(error);
    }
  }

  /** A topic in a resume: joined only on a clear yes; a failing handler counts as no (and is logged). */
  async #mayResume(session: Session, claims: JWTPayload, topic: string): Promise<Access> {
    try {
      return await this.core.access.may(session, claims, 'subscribe', topic);
    } catch (error) {
      this.options.logger.warn({ id: session.id, err: String(error) }, 'subscribe handler failed during a resume');
      return { allow: false };
    }
  }

  /** Whether the session's user may read who is on `topic` (a `presence` request): the permissions, else `authorize`. */
  mayReadPresence(session: Session, claims: JWTPayload, topic: string): boolean | Promise<boolean> {
    return this.core.access.mayReadPresence(session, claims, topic);
  }
}

/** A close code a handler may choose (`applicationCloseCode`); anything else is a refusal, `4403`. */
function sendableCloseCode(code: number): number {
  try {
    return applicationCloseCode(code);
  } catch {
    return CloseCode.Forbidden;
  }
}
