import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type ClientMessage,
  CloseCode,
  MessageType,
  ProtocolError,
  SUBPROTOCOL,
  type ServerMessage,
  TICKET_PATH,
  type StreamPosition,
  type StreamState,
  TOPIC_STREAM_PREFIX,
  parseClientMessage,
  topicStream,
  userStream,
} from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import { WebSocket, WebSocketServer } from 'ws';
import { Admission, type Admitted, type Refused } from './admission.js';
import type { Audience, Publication, PublishOptions } from './broker.js';
import { DeadlineQueue } from './deadlines.js';
import { Arrival } from './floors.js';
import { StoreUnavailableError, TokenError } from './errors.js';
import { REFUSAL_BODY, refuseUpgrade, sendJson } from './http-response.js';
import { IdentityVerifier, RevokedError } from './identity.js';
import { type GatewayOptions, type ResolvedOptions, resolveOptions } from './options.js';
import type { AuthMethod, AuthStage, GatewayEvents, Identity } from './events.js';
import { Registry } from './registry.js';
import { type Connection, type Outbound, Session } from './session.js';
import { Tickets } from './tickets.js';
import { createTokenVerifier, DEFAULT_CLOCK_TOLERANCE_SEC, type VerifiedToken } from './token-verifier.js';
import { type CachedVerifier, createCachedVerifier } from './verification-cache.js';

interface Recovery {
  /** Per-stream positions to report, or undefined without history. */
  readonly states: Record<string, StreamState> | undefined;
  readonly replay: readonly Outbound[];
}

/** The `message` frame of a publication, serialized once for all its connections. */
function outbound(publication: Publication): Outbound {
  const { data, stream, offset, epoch } = publication;
  const topic = 'topic' in publication.to ? publication.to.topic : undefined;
  // Concatenated rather than re-stringified: `data` is already JSON, shared by every node and replay.
  let frame = `{"type":"message","data":${data}`;
  if (topic !== undefined) frame += `,"topic":${JSON.stringify(topic)}`;
  if (stream !== undefined) frame += `,"stream":${JSON.stringify(stream)},"offset":${offset},"epoch":${JSON.stringify(epoch)}`;
  return { payload: Buffer.from(`${frame}}`), stream, offset, epoch };
}

/** Readiness: 200 only while this node can serve (broker ready, not closing). Balancers probe it. */
const HEALTH_PATH = '/healthz';
/** Liveness: 200 while the process answers HTTP at all; restart the process when it does not. */
const LIVE_PATH = '/livez';
/** Users whose revocations are re-read from the store at once after the broker's link came back. */
const RESYNC_BATCH = 256;
/** A failed re-read is tried again this often, this many times, while the link stays up. */
const RESYNC_RETRY_MS = 1_000;
const RESYNC_ATTEMPTS = 30;
/** How long `close()` waits for peers to answer the 1001 close before cutting them. */
const SHUTDOWN_GRACE_MS = 2_000;

function encode(frame: ServerMessage): Buffer {
  return Buffer.from(JSON.stringify(frame));
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

/**
 * A record keyed by stream name, without a prototype: V8 keeps it as a dictionary from the start,
 * where a `{}` would grow a hidden class per distinct user's stream name.
 */
function streamStates(): Record<string, StreamState> {
  return Object.create(null) as Record<string, StreamState>;
}

function destroySocket(this: Duplex): void {
  this.destroy();
}

/** Frames waiting behind an async step before the socket stops reading. */
const BACKLOG_PAUSE_AT = 8;

/**
 * ws's socket with a slot for its session, so one set of listeners serves every socket. Declared
 * in the class (ws's `WebSocket` option), the slot lives in the object itself; a property added
 * later would cost each socket an out-of-object property array.
 */
class SessionSocket extends WebSocket {
  session!: Session;
}

function onSocketPong(this: WebSocket): void {
  (this as SessionSocket).session.alive = true;
}

/**
 * An authenticated WebSocket gateway: ticket endpoint, upgrade checks, auth flows, expiry policies,
 * per-user and per-topic delivery. Attach it to any `http.Server` (Express included).
 */
export class Gateway extends EventEmitter<GatewayEvents> {
  readonly #options: ResolvedOptions;
  readonly #wss: WebSocketServer;
  readonly #deadlines: DeadlineQueue;
  readonly #identity: IdentityVerifier;
  readonly #perMessage: CachedVerifier;
  readonly #admission: Admission;
  readonly #registry = new Registry();
  readonly #servers = new Set<Server>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #nextId = 1;
  readonly #sendToSelf = (target: Session, data: unknown): boolean =>
    this.#deliver(target, { payload: encode({ type: MessageType.Message, data }) }, this.#options.clock.now());
  readonly #onSocketMessage = ((gateway: Gateway) =>
    function (this: WebSocket, data: Buffer, isBinary: boolean) {
      gateway.#onFrame((this as SessionSocket).session, data, isBinary);
    })(this);
  readonly #onSocketError = ((gateway: Gateway) =>
    function (this: WebSocket, error: Error) {
      gateway.#options.logger.debug({ id: (this as SessionSocket).session.id, err: error.message }, 'socket error');
    })(this);
  readonly #onSocketClose = ((gateway: Gateway) =>
    function (this: WebSocket, code: number) {
      gateway.#onClose((this as SessionSocket).session, code);
    })(this);
  #closing = false;
  /** Bumped by every resync, so a slower earlier one stops. */
  #resyncRun = 0;

  constructor(options: GatewayOptions) {
    super();
    this.#options = resolveOptions(options);
    const { clock } = this.#options;
    const verifier = createTokenVerifier(this.#options.jwt, clock);
    const now = () => clock.now();
    const skewMs = (this.#options.jwt.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC) * 1000;
    this.#identity = new IdentityVerifier(verifier, this.#options.revocationStore, now, skewMs);
    this.#perMessage = createCachedVerifier(verifier, { maxEntries: this.#options.verificationCacheSize }, clock);
    const tickets = new Tickets(this.#options.ticketStore, {
      ttlMs: this.#options.ticketTtlMs,
      reusable: this.#options.ticketReuse,
    });
    this.#admission = new Admission(this.#options, this.#identity, tickets, this);
    this.#deadlines = new DeadlineQueue(clock);
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.#options.maxPayload,
      handleProtocols: () => SUBPROTOCOL,
      WebSocket: SessionSocket,
    });
    this.#options.broker
      .start({
        publication: (publication) => this.#deliverLocally(publication),
        control: (message) => this.#closeRevoked(message.revoke),
        resync: () => this.#resync(),
      })
      .catch((error: unknown) => this.#options.logger.error({ err: String(error) }, 'broker failed to start'));
    if (this.#options.heartbeatIntervalMs > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), this.#options.heartbeatIntervalMs);
      this.#heartbeat.unref();
    }
  }

  // ---------------------------------------------------------------- HTTP edge

  /** Serves `POST /auth/ticket` and `GET /healthz`; anything else goes to `next`, or 404. */
  readonly handleRequest = (req: IncomingMessage, res: ServerResponse, next?: () => void): void => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === TICKET_PATH && this.#options.ticket !== 'off') {
      if (req.method !== 'POST') return sendJson(res, 405, { error: REFUSAL_BODY[405] }, { Allow: 'POST' });
      void this.#admission.issueTicket(req, res);
      return;
    }
    if (path === HEALTH_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      // A node that cannot reach its broker answers 503, so load balancers send new clients elsewhere.
      const broker = this.#options.broker.status ?? 'ready';
      const status = this.#closing ? 'closing' : broker === 'ready' ? 'ok' : 'degraded';
      const body = { status, broker, node: this.#options.nodeId, connections: this.#registry.all.size };
      return sendJson(res, status === 'ok' ? 200 : 503, body);
    }
    if (path === LIVE_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      return sendJson(res, 200, { status: 'live', node: this.#options.nodeId });
    }
    if (next) return next();
    sendJson(res, 404, { error: REFUSAL_BODY[404] });
  };

  /** Hooks this gateway into `server`'s upgrades. */
  attach(server: Server): this {
    this.#servers.add(server);
    server.on('upgrade', this.handleUpgrade);
    return this;
  }

  /** Checks an upgrade request and either refuses it with an HTTP status or opens the WebSocket. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Errors on the raw socket before the upgrade completes must not crash the process.
    socket.on('error', destroySocket);
    if (this.#closing) return refuseUpgrade(socket, 503);
    let decision: ReturnType<Admission['admit']>;
    try {
      decision = this.#admission.admit(req);
    } catch (error) {
      return this.#upgradeFailed(socket, error);
    }
    if (isPromise(decision)) {
      decision.then(
        (settled) => this.#upgrade(req, socket, head, settled),
        (error: unknown) => this.#upgradeFailed(socket, error),
      );
    } else {
      this.#upgrade(req, socket, head, decision);
    }
  };

  /** Whatever throws while deciding an upgrade (e.g. an event listener) refuses it, never the process. */
  #upgradeFailed(socket: Duplex, error: unknown): void {
    this.#options.logger.error({ err: String(error) }, 'upgrade failed');
    refuseUpgrade(socket, 503);
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, decision: Admitted | Refused): void {
    if (decision.status !== 101) return refuseUpgrade(socket, decision.status, decision.headers);
    if (socket.destroyed || this.#closing) return refuseUpgrade(socket, 503);
    const { identity, method, resume } = decision;
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#open(ws, req, identity, method, resume));
  }

  // ---------------------------------------------------------------- connection lifecycle

  #open(
    ws: WebSocket,
    req: IncomingMessage,
    identity: Identity | undefined,
    method: AuthMethod | undefined,
    resume: Record<string, StreamPosition> | undefined,
  ): void {
    const session = new Session(this.#nextId++, ws, this.#admission.clientAddress(req), this.#sendToSelf);
    this.#registry.all.add(session);
    // One set of listeners for every socket, finding the session on the socket: four closures
    // (and their contexts) per connection saved.
    (ws as SessionSocket).session = session;
    ws.on('message', this.#onSocketMessage);
    ws.on('pong', onSocketPong);
    ws.on('error', this.#onSocketError);
    ws.on('close', this.#onSocketClose);

    if (identity && method && !this.#options.requireAuthMessage) {
      this.#run(session, this.#bind(session, identity, method, resume));
    } else {
      session.ticketUser = identity?.user;
      this.#armAuthTimeout(session);
    }
  }

  #armAuthTimeout(session: Session): void {
    session.deadline?.cancel();
    session.deadline = this.#deadlines.schedule(this.#options.clock.now() + this.#options.authTimeoutMs, this.#authTimedOut, session);
  }

  // Deadline callbacks, made once and given the session, so scheduling allocates no closure.
  readonly #authTimedOut = (session: Session): void => {
    if (session.state !== 'pending') return;
    this.emit('authFailed', { stage: 'auth', reason: 'timeout' });
    session.close(CloseCode.AuthTimeout, 'authentication timed out');
  };

  readonly #expiryNear = (session: Session): void => {
    const expiresAt = session.expiresAt as number;
    this.#write(session, { type: MessageType.ReauthRequired, deadline: expiresAt, reason: 'expiring' });
    session.deadline = this.#deadlines.schedule(expiresAt, this.#expiryDue, session);
  };

  readonly #expiryDue = (session: Session): void => this.#expire(session);

  readonly #reauthGraceOver = (session: Session): void => {
    if (session.state === 'held') session.close(CloseCode.TokenExpired, 'reauth deadline missed');
  };

  #onClose(session: Session, code: number): void {
    if (session.isClosed()) return;
    session.deadline?.cancel();
    this.#registry.unbind(session);
    session.state = 'closed';
    session.held = undefined;
    session.heldInbound = undefined;
    session.backlog = undefined;
    session.recovering = undefined;
    this.#registry.all.delete(session);
    this.emit('close', { connection: session, code: session.closeCode ?? code });
  }

  #beat(): void {
    for (const session of this.#registry.all) {
      if (!session.alive) {
        this.#options.logger.info({ id: session.id }, 'peer missed a heartbeat: terminated');
        session.socket.terminate();
        continue;
      }
      session.alive = false;
      session.socket.ping();
    }
  }

  // ---------------------------------------------------------------- inbound frames

  #onFrame(session: Session, data: Buffer, isBinary: boolean): void {
    if (session.isClosed()) return;
    if (isBinary) return session.close(CloseCode.UnsupportedData, 'binary frames are not accepted');
    const now = this.#options.clock.now();
    const wait = session.frames.hit(this.#options.messageRateLimit, now);
    if (wait > 0) return this.#rateLimited(session, wait);
    let frame: ClientMessage;
    try {
      frame = parseClientMessage(data.toString());
    } catch (error) {
      const problem = error instanceof ProtocolError ? error : new ProtocolError('bad frame');
      this.#options.logger.info({ id: session.id, problem: problem.message }, 'bad frame');
      return session.close(problem.closeCode, problem.message);
    }
    if (session.busy) {
      const backlog = (session.backlog ??= []);
      backlog.push(frame);
      // Stop reading only once frames pile up behind a slow step (TCP then pushes back): pausing
      // and resuming on every async step costs two epoll_ctl calls per frame.
      if (backlog.length >= BACKLOG_PAUSE_AT && !session.paused) {
        session.paused = true;
        session.socket.pause();
      }
      return;
    }
    this.#process(session, frame);
  }

  /** Runs one frame; frames after an async step wait in the backlog so order is kept. */
  #process(session: Session, frame: ClientMessage): void {
    let result: void | Promise<void>;
    try {
      result = this.#handle(session, frame);
    } catch (error) {
      return this.#internalError(session, error);
    }
    if (isPromise(result)) this.#run(session, result);
  }

  /**
   * Holds the session's later frames back in the backlog until `step` has finished; once
   * `BACKLOG_PAUSE_AT` frames wait, `#onFrame` stops the socket reading, so a client cannot pile
   * frames up in memory behind a slow step (TCP pushes back).
   */
  #run(session: Session, step: Promise<void>): void {
    session.busy = true;
    step.then(
      () => this.#drain(session),
      (error: unknown) => this.#internalError(session, error),
    );
  }

  #drain(session: Session): void {
    session.busy = false;
    while (!session.busy && session.state !== 'closed') {
      const next = session.backlog?.shift();
      if (!next) break;
      this.#process(session, next);
    }
    if (!session.busy && session.paused) {
      session.paused = false;
      session.socket.resume();
    }
  }

  #internalError(session: Session, error: unknown): void {
    this.#options.logger.error({ id: session.id, err: String(error) }, 'frame handling failed');
    session.close(CloseCode.InternalError, 'internal error');
  }

  #handle(session: Session, frame: ClientMessage): void | Promise<void> {
    switch (frame.type) {
      case MessageType.Ping:
        return this.#write(session, { type: MessageType.Pong, ...(frame.id === undefined ? {} : { id: frame.id }) });
      case MessageType.Auth:
        return this.#onAuth(session, frame.token, frame.resume);
      case MessageType.Logout:
        // Even while held: logging out must stop deliveries at once, not after a reauth.
        if (session.state === 'pending') return this.#unauthorized(session, 'auth', 'not_authenticated', 'authenticate first');
        return this.#onLogout(session);
      default:
        break;
    }
    if (session.state === 'held') {
      // The token lapsed: keep the client's frames, in order, for after its reauth.
      const heldInbound = (session.heldInbound ??= []);
      if (heldInbound.length >= this.#options.maxHeldMessages) {
        return session.close(CloseCode.SlowConsumer, 'too many frames while awaiting reauth');
      }
      heldInbound.push(frame);
      return;
    }
    const perMessage =
      this.#options.perMessageAuth && (frame.type === MessageType.Message || frame.type === MessageType.Publish);
    if (perMessage) {
      if (frame.token === undefined) return this.#unauthorized(session, 'per_message', 'missing', 'token required');
      // Fast path: this session's user, a token already verified and cached, no later expiry to
      // adopt, a revocation store that answers synchronously: dispatch now, no promise, no pause.
      if (session.state === 'authenticated') {
        const hit = this.#perMessage.peek(frame.token);
        if (
          hit !== undefined &&
          hit.user === session.user &&
          hit.expiresAt <= (session.expiresAt as number) &&
          this.#identity.isCurrentNow(hit) === true
        ) {
          return this.#dispatch(session, frame, hit.claims);
        }
      }
      return this.#withMessageToken(session, frame.token, (claims) => this.#dispatch(session, frame, claims));
    }
    if (session.state !== 'authenticated') {
      return this.#unauthorized(session, 'auth', 'not_authenticated', 'authenticate first');
    }
    return this.#dispatch(session, frame, session.claims as JWTPayload);
  }

  #dispatch(session: Session, frame: ClientMessage, claims: JWTPayload): void | Promise<void> {
    switch (frame.type) {
      case MessageType.Message:
        return this.#onMessage(session, frame.data, frame.id, claims);
      case MessageType.Subscribe:
        return this.#onSubscribe(session, frame.topic, frame.id, frame.since);
      case MessageType.Unsubscribe:
        this.#registry.leaveTopic(session, frame.topic);
        session.floors.delete(topicStream(frame.topic));
        return this.#ack(session, frame.id);
      case MessageType.Publish:
        return this.#onPublish(session, frame.topic, frame.data, frame.id);
      default:
        return;
    }
  }

  #onMessage(session: Session, data: unknown, id: string | undefined, claims: JWTPayload): void {
    const handler = this.#options.onMessage;
    if (!handler) return this.#ack(session, id);
    const event = { connection: session as Connection, user: session.user as string, claims, data };
    let result: void | Promise<void>;
    try {
      result = handler(event);
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
    this.#options.logger.warn({ id: session.id, err: String(error) }, 'onMessage rejected a message');
    this.#write(session, {
      type: MessageType.Error,
      ...(id === undefined ? {} : { id }),
      code: 'rejected',
      message: 'message rejected',
    });
  }

  #ack(session: Session, id: string | undefined): void {
    if (id !== undefined) this.#write(session, { type: MessageType.Ack, id });
  }

  #forbidden(session: Session, id: string | undefined, message: string): void {
    this.#write(session, { type: MessageType.Error, ...(id === undefined ? {} : { id }), code: 'forbidden', message });
  }

  async #onSubscribe(
    session: Session,
    topic: string,
    id: string | undefined,
    since: StreamPosition | undefined,
  ): Promise<void> {
    const user = session.user as string;
    const allowed = await this.#options.authorize(user, 'subscribe', topic);
    // Identity may have changed (logout, close) while authorize ran.
    if (session.user !== user || session.isClosed()) return;
    if (!allowed) return this.#forbidden(session, id, `not allowed to subscribe to '${topic.slice(0, 64)}'`);
    if (session.topics.has(topic)) {
      // Already reading it (a client re-subscribing after a resume): nothing changes. A new start
      // would move the connection's position under publications still on their way to this node
      // (losing them) or back over ones it has (sending them twice). The ack says where it stands.
      const position = session.floors.get(topicStream(topic));
      if (id !== undefined) {
        this.#write(session, { type: MessageType.Ack, id, ...(position ? { streams: { [topicStream(topic)]: position } } : {}) });
      }
      return;
    }
    const recovering = this.#recover(session, new Map([[topicStream(topic), since]]), () =>
      this.#registry.joinTopic(session, topic),
    );
    // Awaited only when it is a promise: after a synchronous join, a yield here would let a live
    // message overtake the ack that reports the position before it.
    const recovery = isPromise(recovering) ? await recovering : recovering;
    if (session.user !== user || session.isClosed()) return;
    if (id !== undefined) {
      this.#write(session, { type: MessageType.Ack, id, ...(recovery.states ? { streams: recovery.states } : {}) });
    }
    this.#finishRecovery(session, recovery);
  }

  async #onPublish(session: Session, topic: string, data: unknown, id: string | undefined): Promise<void> {
    const user = session.user as string;
    const allowed = await this.#options.authorize(user, 'publish', topic);
    if (session.user !== user || session.isClosed()) return;
    if (!allowed) return this.#forbidden(session, id, `not allowed to publish to '${topic.slice(0, 64)}'`);
    await this.publish(topic, data);
    this.#ack(session, id);
  }

  #onLogout(session: Session): void {
    this.#registry.unbind(session);
    session.state = 'pending';
    session.user = undefined;
    session.claims = undefined;
    session.expiresAt = undefined;
    session.held = undefined;
    session.heldInbound = undefined;
    session.recovering = undefined;
    session.floors.clear();
    this.#write(session, { type: MessageType.LoggedOut });
    if (this.#options.closeOnLogout) return session.close(CloseCode.Normal, 'logged out');
    this.#armAuthTimeout(session);
  }

  #rateLimited(session: Session, retryAfter: number): void {
    this.#write(session, { type: MessageType.Error, code: 'rate_limited', message: 'rate limited', retryAfter });
    session.close(CloseCode.RateLimited, 'rate limited');
  }

  #unauthorized(session: Session, stage: AuthStage, reason: string, message: string): void {
    this.emit('authFailed', { stage, reason });
    session.close(CloseCode.Unauthorized, message);
  }

  // ---------------------------------------------------------------- authentication

  async #onAuth(
    session: Session,
    token: string,
    resume: Readonly<Record<string, StreamPosition>> | undefined,
  ): Promise<void> {
    const wait = session.authAttempts.hit(this.#options.authRateLimit, this.#options.clock.now());
    if (wait > 0) return this.#rateLimited(session, wait);
    let verified: VerifiedToken;
    try {
      verified = await this.#identity.verify(token);
    } catch (error) {
      return this.#refuse(session, 'auth', error);
    }
    if (session.isClosed() || !this.#isSameUser(session, verified.user, 'auth')) return;
    await this.#bind(session, verified, session.user === undefined ? 'message' : 'reauth', resume);
  }

  /** Per-message mode: verify the frame's token (cached), then run `next` with its claims. */
  async #withMessageToken(
    session: Session,
    token: string,
    next: (claims: JWTPayload) => void | Promise<void>,
  ): Promise<void> {
    let verified: VerifiedToken;
    try {
      verified = await this.#perMessage.verify(token);
      await this.#identity.assertCurrent(verified);
    } catch (error) {
      return this.#refuse(session, 'per_message', error);
    }
    if (session.isClosed() || !this.#isSameUser(session, verified.user, 'per_message')) return;
    if (session.state === 'pending') {
      await this.#bind(session, verified, 'per_message', undefined);
      if (session.isClosed()) return;
    } else if (verified.expiresAt > (session.expiresAt ?? 0)) {
      // A fresher token on a message extends the connection's identity, as seed 004 describes.
      session.expiresAt = verified.expiresAt;
      this.#scheduleExpiry(session);
    }
    return next(verified.claims);
  }

  /** A socket keeps one user: the one bound, or its ticket's in two-layer mode. Else `4403`. */
  #isSameUser(session: Session, user: string, stage: AuthStage): boolean {
    const expected = session.user ?? session.ticketUser;
    if (expected === undefined || expected === user) return true;
    this.emit('authFailed', { stage, reason: 'user_mismatch' });
    session.close(CloseCode.Forbidden, 'token is for a different user');
    return false;
  }

  #refuse(session: Session, stage: AuthStage, error: unknown): void {
    if (session.isClosed()) return;
    if (error instanceof RevokedError) {
      this.emit('authFailed', { stage, reason: 'revoked' });
      return session.close(CloseCode.Forbidden, 'revoked');
    }
    if (error instanceof TokenError) return this.#unauthorized(session, stage, error.reason, 'invalid token');
    if (error instanceof StoreUnavailableError) {
      this.#options.logger.error({ id: session.id, err: error.code }, 'auth failed: store unavailable');
      return session.close(CloseCode.InternalError, 'service unavailable');
    }
    throw error;
  }

  /**
   * Binds an identity to the session and starts its expiry policy. On a reauth of the same user the
   * socket carries on (held deliveries flushed in order); on a first bind the user's stream, and any
   * resumed topic streams, are recovered from history.
   */
  async #bind(
    session: Session,
    identity: Identity,
    method: AuthMethod,
    resume: Readonly<Record<string, StreamPosition>> | undefined,
  ): Promise<void> {
    const isNew = session.user === undefined;
    const wasHeld = session.state === 'held';
    session.user = identity.user;
    session.claims = identity.claims;
    session.expiresAt = identity.expiresAt;
    session.ticketUser = undefined;
    session.state = 'authenticated';
    const authOk = { type: MessageType.AuthOk, user: identity.user, expiresAt: identity.expiresAt } as const;
    if (!isNew) {
      // In band: this socket missed nothing, what it did not get is in its held queue.
      this.#write(session, authOk);
      // After auth_ok, so a warning for a short-lived token follows the confirmation it is about.
      this.#scheduleExpiry(session);
      if (wasHeld) this.#release(session);
      this.emit('reauthenticated', { connection: session, latencyMs: this.#reauthLatency(session, wasHeld) });
      this.emit('authenticated', { connection: session, method });
      return;
    }
    const own = userStream(identity.user);
    const wanted = new Map<string, StreamPosition | undefined>([[own, resume?.[own]]]);
    let forbidden: Record<string, StreamState> | undefined;
    for (const [stream, position] of resume ? Object.entries(resume) : []) {
      if (wanted.has(stream)) continue;
      const topic = stream.startsWith(TOPIC_STREAM_PREFIX) ? stream.slice(TOPIC_STREAM_PREFIX.length) : undefined;
      if (topic !== undefined && topic.length > 0 && (await this.#options.authorize(identity.user, 'subscribe', topic))) {
        wanted.set(stream, position);
      } else {
        // Resume re-checks authorization: a stream this user may not read yields nothing.
        (forbidden ??= streamStates())[stream] = { recovered: false };
      }
      if (session.isClosed()) return;
    }
    const recovering = this.#recover(session, wanted, () => {
      this.#registry.addUser(session, identity.user);
      for (const stream of wanted.keys()) {
        if (stream.startsWith(TOPIC_STREAM_PREFIX)) this.#registry.joinTopic(session, stream.slice(TOPIC_STREAM_PREFIX.length));
      }
    });
    const recovery = isPromise(recovering) ? await recovering : recovering;
    if (session.isClosed() || session.user !== identity.user) return;
    const streams = recovery.states && forbidden ? { ...recovery.states, ...forbidden } : recovery.states;
    this.#write(session, streams ? { ...authOk, streams } : authOk);
    this.#scheduleExpiry(session);
    this.#finishRecovery(session, recovery);
    this.emit('authenticated', { connection: session, method });
  }

  #reauthLatency(session: Session, wasHeld: boolean): number | undefined {
    const latency = wasHeld && session.expiredAt !== undefined ? this.#options.clock.now() - session.expiredAt : undefined;
    session.expiredAt = undefined;
    return latency;
  }

  /** After a reauth: the held deliveries, then the frames the client sent while held, in order. */
  #release(session: Session): void {
    const { held, heldInbound } = session;
    session.held = undefined;
    session.heldInbound = undefined;
    for (const payload of held ?? []) session.write(payload, this.#options.maxBufferedBytes);
    if (heldInbound) (session.backlog ??= []).unshift(...heldInbound);
  }

  /**
   * Replays `streams` from history across the seam with live delivery: each stream's start is read
   * before `join` starts live delivery, which is buffered until the replay is written; buffered
   * frames the replay already covered are dropped. So the connection gets every message after the
   * reported offset exactly once, in order. A start that history no longer covers (or another
   * epoch) replays nothing and reports `recovered: false` with the current position.
   */
  #recover(
    session: Session,
    streams: ReadonlyMap<string, StreamPosition | undefined>,
    join: () => void,
  ): Recovery | Promise<Recovery> {
    if (this.#options.history === false) {
      join();
      return { states: undefined, replay: [] };
    }
    const { broker } = this.#options;
    let requested = false;
    for (const position of streams.values()) requested ||= position !== undefined;
    if (requested || broker.positionNow === undefined) return this.#recoverFromHistory(session, streams, join);
    // Fresh streams on a broker in this process: join and take the positions in one synchronous
    // step. Nothing can be published in between, so there is nothing to read or replay.
    join();
    const states = streamStates();
    for (const stream of streams.keys()) {
      const position = broker.positionNow(stream);
      session.floors.set(stream, position.epoch, position.offset);
      states[stream] = position;
    }
    return { states, replay: [] };
  }

  async #recoverFromHistory(
    session: Session,
    streams: ReadonlyMap<string, StreamPosition | undefined>,
    join: () => void,
  ): Promise<Recovery> {
    const broker = this.#options.broker;
    const starts = new Map<string, { position: StreamPosition; requested: boolean }>();
    for (const [stream, requested] of streams) {
      starts.set(stream, { position: requested ?? (await broker.position(stream)), requested: requested !== undefined });
    }
    session.recovering ??= [];
    join();
    const states = streamStates();
    const replay: Outbound[] = [];
    for (const [stream, start] of starts) {
      const read = await broker.read(stream, start.position);
      if (read.recovered) {
        session.floors.set(stream, read.position.epoch, start.position.offset);
        for (const publication of read.publications) replay.push(outbound(publication));
        states[stream] = {
          epoch: read.position.epoch,
          offset: start.position.offset,
          ...(start.requested ? { recovered: true } : {}),
        };
      } else {
        session.floors.set(stream, read.position.epoch, read.position.offset);
        states[stream] = { ...read.position, recovered: false };
      }
    }
    if (replay.length > 0) this.emit('replayed', { connection: session, count: replay.length });
    return { states, replay };
  }

  /** Writes the replay, then the live frames buffered meanwhile; the floors drop what overlaps. */
  #finishRecovery(session: Session, recovery: Recovery): void {
    const buffered = session.recovering;
    if (buffered === undefined && recovery.replay.length === 0) return;
    session.recovering = undefined;
    const now = this.#options.clock.now();
    for (const out of recovery.replay) this.#deliver(session, out, now);
    for (const out of buffered ?? []) this.#deliver(session, out, now);
  }

  // ---------------------------------------------------------------- expiry

  #scheduleExpiry(session: Session): void {
    session.deadline?.cancel();
    session.deadline = undefined;
    const { expiryPolicy, reauthWindowMs, clock } = this.#options;
    const expiresAt = session.expiresAt as number;
    if (expiryPolicy === 'ignore') return;
    if (expiryPolicy === 'close' || reauthWindowMs === 0) {
      session.deadline = this.#deadlines.schedule(expiresAt, this.#expiryDue, session);
      return;
    }
    // A token born inside the window (shorter-lived than it) is warned halfway through its life,
    // not at once: a warning per fresh token would make clients refresh in a loop.
    const now = clock.now();
    const warnAt =
      expiresAt - reauthWindowMs > now ? expiresAt - reauthWindowMs : now + Math.floor((expiresAt - now) / 2);
    session.deadline = this.#deadlines.schedule(warnAt, this.#expiryNear, session);
  }

  /** The token of an authenticated session has run out: apply the policy. */
  #expire(session: Session): void {
    if (session.state !== 'authenticated') return;
    const { expiryPolicy, reauthGraceMs, clock } = this.#options;
    this.emit('expired', { connection: session, policy: expiryPolicy });
    if (expiryPolicy === 'close') return session.close(CloseCode.TokenExpired, 'token expired');
    session.deadline?.cancel();
    session.state = 'held';
    session.expiredAt = clock.now();
    const deadline = (session.expiresAt as number) + reauthGraceMs;
    this.#write(session, { type: MessageType.ReauthRequired, deadline, reason: 'expired' });
    session.deadline = this.#deadlines.schedule(deadline, this.#reauthGraceOver, session);
  }

  // ---------------------------------------------------------------- delivery

  /** Writes a protocol frame regardless of auth state (acks, errors, auth results). */
  #write(session: Session, frame: ServerMessage): void {
    session.write(encode(frame), this.#options.maxBufferedBytes);
  }

  /** Delivers a frame to one session, honouring its auth state; true if sent, buffered or held. */
  #deliver(session: Session, out: Outbound, now: number): boolean {
    if (session.recovering && session.state === 'authenticated') {
      session.recovering.push(out);
      return true;
    }
    const { stream } = out;
    if (stream !== undefined) {
      const arrival = session.floors.classify(stream, out.epoch as string, out.offset as number);
      if (arrival === Arrival.Duplicate) return false;
      if (arrival === Arrival.Gap) {
        this.#streamGap(session, out);
        return false;
      }
    }
    if (session.state === 'authenticated') {
      if (this.#options.expiryPolicy === 'ignore' || now < (session.expiresAt as number)) {
        session.write(out.payload, this.#options.maxBufferedBytes);
        if (stream !== undefined) session.floors.set(stream, out.epoch as string, out.offset as number);
        return true;
      }
      // The expiry timer has not fired yet, but the token is over: never deliver past `exp`.
      this.#expire(session);
    }
    if (session.state !== 'held') return false;
    const held = (session.held ??= []);
    if (held.length >= this.#options.maxHeldMessages) {
      session.close(CloseCode.SlowConsumer, 'too many messages held awaiting reauth');
      return false;
    }
    held.push(out.payload);
    if (stream !== undefined) session.floors.set(stream, out.epoch as string, out.offset as number);
    return true;
  }

  /**
   * A position of one of the session's streams would be skipped (the broker could not fill the gap
   * from history, or the epoch changed): never deliver past it silently. The client reconnects and
   * resumes, and learns from the resume whether history still had what it missed.
   */
  #streamGap(session: Session, out: Outbound): void {
    if (session.closeCode !== undefined) return;
    const stream = out.stream as string;
    const expected = session.floors.get(stream);
    this.#options.logger.warn(
      { id: session.id, stream, after: expected, got: { epoch: out.epoch, offset: out.offset } },
      'stream gap: connection closed to resume',
    );
    this.emit('streamGap', { connection: session, stream });
    session.close(CloseCode.StreamGap, 'stream gap: resume');
  }

  /** Delivers a publication (from this node or another) to the matching connections on this node. */
  #deliverLocally(publication: Publication): number {
    const { to } = publication;
    const sessions =
      'user' in to ? this.#registry.ofUser(to.user) : 'topic' in to ? this.#registry.ofTopic(to.topic) : this.#registry.all;
    if (!sessions) return 0;
    const out = outbound(publication);
    const now = this.#options.clock.now();
    if (sessions.size === 1) {
      // One connection (the usual user): nothing to copy.
      const [only] = sessions as Set<Session>;
      return this.#deliver(only as Session, out, now) ? 1 : 0;
    }
    let count = 0;
    // Copy: a delivery can close a session, which edits the set being iterated.
    for (const session of [...sessions]) if (this.#deliver(session, out, now)) count++;
    return count;
  }

  /** Publishes through the broker, which keeps history and delivers on every node, this one included. */
  #publish(to: Audience, data: unknown, stream: string | undefined, options: PublishOptions | undefined): Promise<number> {
    const json = JSON.stringify(data) ?? 'null';
    const kept = this.#options.history === false ? undefined : stream;
    return this.#options.broker.publish({ to, data: json, ...(kept ? { stream: kept } : {}) }, options);
  }

  /**
   * Sends `data` to every connection of `user`, on every node, and keeps it in the user's stream
   * history for resume. Resolves once delivered on this node, with how many of this node's
   * connections got it (or hold it for their reauth).
   */
  sendToUser(user: string, data: unknown, options?: PublishOptions): Promise<number> {
    return this.#publish({ user }, data, userStream(user), options);
  }

  /**
   * Sends `data` to every authenticated, unexpired connection, at most once: not kept in history,
   * so a connection that is down (or on a node whose link is down) at that moment misses it.
   */
  broadcast(data: unknown, options?: PublishOptions): Promise<number> {
    return this.#publish({ everyone: true }, data, undefined, options);
  }

  /** Sends `data` to every subscriber of `topic` and keeps it in the topic's history. */
  publish(topic: string, data: unknown, options?: PublishOptions): Promise<number> {
    return this.#publish({ topic }, data, topicStream(topic), options);
  }

  /** Closes every connection of `user` with 4403 and refuses their outstanding tickets and tokens. */
  async revokeUser(user: string): Promise<number> {
    await this.#options.revocationStore.revoke(user, this.#options.clock.now());
    await this.#options.broker.control({ revoke: user });
    return this.#closeRevoked(user);
  }

  /**
   * The broker's link is back after a loss: revocations published meanwhile may never arrive, so
   * read each live user's from the store and close what they cover. A newer resync supersedes.
   */
  #resync(): void {
    const run = ++this.#resyncRun;
    void this.#recheckRevocations(run, 1);
  }

  async #recheckRevocations(run: number, attempt: number): Promise<void> {
    const users = [...this.#registry.users()];
    let closed = 0;
    try {
      for (let start = 0; start < users.length; start += RESYNC_BATCH) {
        const batch = users.slice(start, start + RESYNC_BATCH);
        const revokedAt = await Promise.all(batch.map((user) => this.#options.revocationStore.revokedAt(user)));
        if (run !== this.#resyncRun || this.#closing) return;
        batch.forEach((user, index) => {
          const at = revokedAt[index];
          if (at !== undefined) closed += this.#closeRevokedBefore(user, at);
        });
      }
      this.#options.logger.info({ users: users.length, closed }, 'revocations re-read after the broker link returned');
    } catch (error) {
      if (run !== this.#resyncRun || this.#closing) return;
      const retry = attempt < RESYNC_ATTEMPTS;
      this.#options.logger.warn({ err: String(error), attempt, retry }, 'could not re-read revocations');
      if (retry) setTimeout(() => void this.#recheckRevocations(run, attempt + 1), RESYNC_RETRY_MS).unref();
    }
  }

  /** Closes `user`'s sessions whose token a revocation at `revokedAt` covers; returns how many. */
  #closeRevokedBefore(user: string, revokedAt: number): number {
    let count = 0;
    for (const session of [...(this.#registry.ofUser(user) ?? [])]) {
      if (session.claims && this.#identity.coveredByRevocation(session.claims, revokedAt)) {
        session.close(CloseCode.Forbidden, 'revoked');
        count++;
      }
    }
    return count;
  }

  #closeRevoked(user: string): number {
    let count = 0;
    for (const session of [...this.#registry.all]) {
      if (session.user === user || session.ticketUser === user) {
        session.close(CloseCode.Forbidden, 'revoked');
        count++;
      }
    }
    return count;
  }

  /**
   * Verifies a JWT exactly as every entry point does (signature, algorithm, claims, expiry,
   * revocation): for the application's own HTTP routes, e.g. a token refresh endpoint.
   * Throws `TokenError`, `RevokedError` or `StoreUnavailableError`.
   */
  verifyToken(token: string): Promise<VerifiedToken> {
    return this.#identity.verify(token);
  }

  /** Counts for health and metrics: connections by state and messages held awaiting reauth. */
  stats(): { connections: number; authenticated: number; held: number; heldMessages: number } {
    const result = { connections: 0, authenticated: 0, held: 0, heldMessages: 0 };
    for (const session of this.#registry.all) {
      result.connections++;
      if (session.state === 'authenticated') result.authenticated++;
      if (session.state === 'held') {
        result.held++;
        result.heldMessages += session.held?.length ?? 0;
      }
    }
    return result;
  }

  /** Open connections of `user`, or of everyone when `user` is omitted. */
  connectionCount(user?: string): number {
    return user === undefined ? this.#registry.all.size : (this.#registry.ofUser(user)?.size ?? 0);
  }

  /** Stops accepting, closes every connection with 1001 and releases timers. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const server of this.#servers) server.off('upgrade', this.handleUpgrade);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const closed = [...this.#registry.all].map(
      (session) =>
        new Promise<void>((resolve) => {
          if (session.isClosed()) return resolve();
          session.socket.once('close', () => resolve());
          session.close(CloseCode.GoingAway, 'server shutting down');
        }),
    );
    const cut = setTimeout(() => {
      for (const session of this.#registry.all) session.socket.terminate();
    }, SHUTDOWN_GRACE_MS);
    await Promise.all(closed);
    clearTimeout(cut);
    this.#deadlines.clear();
    this.#wss.close();
  }
}

/** Creates a gateway; throws `ConfigError` naming the option at fault. */
export function createGateway(options: GatewayOptions): Gateway {
  return new Gateway(options);
}
