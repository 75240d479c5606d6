import {
  AuthSocketError,
  type ClientMessage,
  CloseCode,
  closeCodeAction,
  LIMITS,
  MessageType,
  parseServerMessage,
  type PresenceMember,
  ProtocolError,
  type ReauthReason,
  type ServerMessage,
  type StreamState,
  SUBPROTOCOL,
  toCloseReason,
} from '@authsocket/protocol';
import { Attempt } from './attempt.js';
import { Waiters } from './deferred.js';
import { Emitter } from './emitter.js';
import { CancelledError, ConnectionLostError, RequestRefusedError, UnauthorizedError } from './errors.js';
import type { AuthSocketEvents } from './events.js';
import { type AuthSocketSnapshot, type Change, Machine } from './machine.js';
import { type AuthCredentials, type AuthSocketOptions, type ResolvedOptions, resolveOptions, type SetAuthStrategy } from './options.js';
import { StreamPositions } from './positions.js';
import { type DataFrame, type Outbound, Outbox } from './queue.js';
import { nextStep, Reconnect } from './reconnect.js';
import { Credentials, refreshInBand } from './refresh.js';
import { type Answer, Requests, type Settler } from './requests.js';
import { type ConnectionState, isAuthenticated } from './state.js';
import { Topic, type TopicLink } from './topic.js';
import { attemptTarget } from './transport.js';

export interface SendOptions {
  /** Give the frame an `id` and resolve the returned promise on the server's `ack`. */
  readonly ack?: boolean;
}

export interface PresenceOptions {
  /** Ask for the count alone (cheap on a large topic): the answer has no `members`. */
  readonly countOnly?: boolean;
}

/** Who is on a topic: `members` is absent when asked with `countOnly`. */
export interface PresenceResult {
  readonly count: number;
  readonly members?: readonly PresenceMember[];
}

export interface SetAuthOptions {
  /** Default: the `setAuthStrategy` option. */
  readonly strategy?: SetAuthStrategy;
}

/**
 * An authsocket.v1 connection that stays authenticated: it gets credentials from the application,
 * refreshes them in band when the server asks, reconnects with backoff when the server says so
 * (`closeCodeAction()`), queues frames while not authenticated and never delivers a message twice.
 */
export class AuthSocket {
  readonly #options: ResolvedOptions;
  readonly #emitter = new Emitter<AuthSocketEvents>((error, event) => {
    if (event !== 'error') this.#report(error);
  });
  readonly #authWaiters = new Waiters();
  readonly #logoutWaiters = new Waiters();
  readonly #machine = new Machine({
    ended: (state, { reason }) =>
      this.#authWaiters.rejectAll(
        state === 'closed' ? new CancelledError(reason ?? 'client closed') : new UnauthorizedError(reason ?? 'unauthenticated'),
      ),
    changed: (change) => this.#emitter.emit('state', change),
    listenerFailed: (error) => this.#report(error),
  });
  readonly #credentials: Credentials;
  readonly #reconnect: Reconnect;
  readonly #outbox: Outbox;
  readonly #requests = new Requests();
  readonly #positions = new StreamPositions();
  readonly #topics = new Map<string, Topic>();
  readonly #topicLink: TopicLink = {
    live: () => this.#live(),
    closed: () => this.state === 'closed',
    request: (frame, settler) => this.#request(frame, settler),
    position: (stream) => this.#positions.get(stream),
    forget: (stream) => this.#positions.delete(stream),
    report: (error) => this.#report(error),
  };
  /** The current attempt: an aborted one is replaced by a new one, never revived. */
  #attempt: Attempt | undefined;
  /** The in-band refresh under way, so a second `reauth_required` does not start another. */
  #refresh: AbortController | undefined;
  #retryAfterMs: number | undefined;
  /** An `auth` frame awaits its `auth_ok`: the first of the socket (`connect`) or a refresh (`inband`). */
  #authInFlight: 'connect' | 'inband' | undefined;

  constructor(options: AuthSocketOptions) {
    this.#options = resolveOptions(options);
    const { auth, getTicket, getToken } = this.#options;
    this.#credentials = new Credentials(auth, getTicket, getToken);
    this.#reconnect = new Reconnect(this.#options);
    this.#outbox = new Outbox(this.#options.maxQueueSize, (item) => this.#transmit(item));
    // Handed around as callbacks (React's useSyncExternalStore), so bound once here.
    this.getSnapshot = this.getSnapshot.bind(this);
    this.subscribeSnapshot = this.subscribeSnapshot.bind(this);
  }

  /** The current state. */
  get state(): ConnectionState {
    return this.#machine.state;
  }

  /** Starts connecting. Does nothing while already connecting or connected. */
  connect(): void {
    const state = this.state;
    if (state !== 'idle' && state !== 'closed' && state !== 'unauthenticated') return;
    this.#reconnect.reset();
    this.#credentials.accepted();
    this.#dropSocket(CloseCode.Normal, 'reconnect');
    this.#listenToBrowser();
    this.#connecting(this.#begin());
  }

  /**
   * Sends `data` to the application on the server. While not authenticated it is queued and sent in
   * order after `auth_ok`. Without `ack` it returns nothing and throws `QueueFullError` (queue full) or
   * `CancelledError` (client closed). With `{ack: true}` it returns a promise that resolves on the
   * server's `ack` with its `data` (what the application's handler answered, e.g. a queue's
   * `{entry}`; undefined when none), and rejects with those errors, `RequestRefusedError` or
   * `ConnectionLostError`.
   */
  send(data: unknown, options?: SendOptions & { readonly ack?: false }): void;
  send(data: unknown, options: SendOptions & { readonly ack: true }): Promise<unknown>;
  send(data: unknown, options?: SendOptions): Promise<unknown> | undefined;
  send(data: unknown, options: SendOptions = {}): Promise<unknown> | undefined {
    return this.#enqueue({ type: MessageType.Message, data }, options.ack === true);
  }

  /** Publishes `data` on `topic`; queued and acknowledged like `send()`. */
  publish(topic: string, data: unknown, options?: SendOptions & { readonly ack?: false }): void;
  publish(topic: string, data: unknown, options: SendOptions & { readonly ack: true }): Promise<void>;
  publish(topic: string, data: unknown, options?: SendOptions): Promise<void> | undefined;
  publish(topic: string, data: unknown, options: SendOptions = {}): Promise<void> | undefined {
    assertTopic(topic);
    return this.#enqueue({ type: MessageType.Publish, topic, data }, options.ack === true) as Promise<void> | undefined;
  }

  /**
   * Calls `method` on the application's backend (the gateway's `onRpc`, e.g. its HTTP proxy) and
   * resolves with its answer. Queued like `send()` until authenticated. Rejects with
   * `RequestRefusedError` (its `temporary` says whether the same call may succeed later),
   * `ConnectionLostError` when the socket closed before the answer (the backend may or may not have
   * run it: it is not re-sent), `QueueFullError` or `CancelledError`.
   */
  rpc<T = unknown>(method: string, data?: unknown): Promise<T> {
    if (typeof method !== 'string' || method.length === 0 || method.length > LIMITS.methodLength) {
      throw new TypeError(`rpc method must be a string of 1-${LIMITS.methodLength} characters`);
    }
    const frame = { type: MessageType.Rpc, method, ...(data === undefined ? {} : { data }) } as const;
    return this.#enqueue(frame, true) as Promise<T>;
  }

  /**
   * Who is subscribed to `topic`, on every node (the gateway's `presence` option): the count and,
   * unless `countOnly`, the members. Queued like `rpc()` until authenticated. Rejects with
   * `RequestRefusedError`: `forbidden` (this user may not see it), `bad_request` (the topic has no
   * presence), `unavailable` (temporary); or `ConnectionLostError`, `QueueFullError`, `CancelledError`.
   */
  presence(topic: string, options: PresenceOptions = {}): Promise<PresenceResult> {
    assertTopic(topic);
    const frame = { type: MessageType.Presence, topic, ...(options.countOnly === true ? { countOnly: true } : {}) } as const;
    return this.#enqueue(frame, true) as Promise<PresenceResult>;
  }

  /**
   * The topic `name`, the same object on every call: `subscribe()` joins it (again after every
   * reconnect), `unsubscribe()` leaves it. Throws a `TypeError` for a name the protocol refuses.
   */
  topic(name: string): Topic {
    assertTopic(name);
    let topic = this.#topics.get(name);
    if (!topic) {
      topic = new Topic(name, this.#topicLink);
      this.#topics.set(name, topic);
    }
    return topic;
  }

  /**
   * Replaces the credentials. `inband` (default) sends `auth` on the live socket: no disconnect, no
   * gap; it needs a `token` (a ticket alone always reconnects). `reconnect` closes the socket and opens
   * a new one with the new credentials. Before `connect()` it only stores them. Resolves on the next
   * `auth_ok`; rejects if the client ends `unauthenticated` or `closed` first.
   */
  setAuth(auth: AuthCredentials, options: SetAuthOptions = {}): Promise<void> {
    if (typeof auth !== 'object' || auth === null) throw new TypeError('setAuth() expects an object {ticket?, token?}');
    const strategy = options.strategy ?? this.#options.setAuthStrategy;
    this.#credentials.replace(auth);
    const state = this.state;
    if (state === 'idle' || state === 'closed') return Promise.resolve();
    const authenticated = this.#authWaiters.add();
    const inband = strategy === 'inband' && auth.token !== undefined && this.#attempt?.writable === true;
    if (inband && isAuthenticated(state)) {
      this.#machine.setState('reauthenticating', { reason: 'setAuth' });
      this.#sendAuth('inband', auth.token as string);
    } else if (inband && state === 'unauthenticated') {
      this.#machine.setState('authenticating', { reason: 'setAuth' });
      this.#sendAuth('connect', auth.token as string);
    } else {
      this.#reconnect.reset();
      this.#listenToBrowser();
      this.#restart('setAuth');
    }
    return authenticated;
  }

  /**
   * Logs out: sends `logout` (the server stops delivering at once and answers `logged_out`), forgets
   * the credentials, topics, stream positions and queued frames, and goes to `unauthenticated`. The
   * socket stays open for a later `setAuth()`. Resolves on `logged_out` (or at once without a socket).
   */
  logout(): Promise<void> {
    const state = this.state;
    this.#credentials.forget();
    this.#positions.clear();
    this.#cancelAll('logged out');
    if (state === 'idle' || state === 'closed') return Promise.resolve();
    if (this.#attempt?.writable && (isAuthenticated(state) || state === 'authenticating')) {
      const loggedOut = this.#logoutWaiters.add();
      this.#write({ type: MessageType.Logout });
      this.#refresh?.abort();
      this.#machine.setState('unauthenticated', { reason: 'logout' });
      return loggedOut;
    }
    this.#stop('unauthenticated', { reason: 'logout' });
    return Promise.resolve();
  }

  /** Closes for good: the socket closes 1000, pending requests reject, no timer or listener remains. */
  close(): void {
    if (this.state === 'closed') return;
    this.#cancelAll('client closed');
    this.#stop('closed', { code: CloseCode.Normal, reason: 'client closed' });
  }

  /** Listens to a typed event; returns the function that stops listening. */
  on<K extends keyof AuthSocketEvents>(event: K, listener: (payload: AuthSocketEvents[K]) => void): () => void {
    return this.#emitter.on(event, listener);
  }

  /** The current snapshot: the same object until something changes. */
  getSnapshot(): AuthSocketSnapshot {
    return this.#machine.snapshot;
  }

  /**
   * Calls `listener` after every snapshot change; returns the function that stops it. With
   * `getSnapshot`, the pair React's `useSyncExternalStore(client.subscribeSnapshot, client.getSnapshot)` takes.
   */
  subscribeSnapshot(listener: () => void): () => void {
    return this.#machine.subscribe(listener);
  }

  /** The attempt frames go out on, while authenticated. */
  #live(): Attempt | undefined {
    return this.state === 'open' && this.#attempt?.socket ? this.#attempt : undefined;
  }

  // --- attempts -----------------------------------------------------------------------------------

  /** Starts a new attempt; the one before it is over. */
  #begin(): Attempt {
    this.#attempt?.abort();
    const attempt = new Attempt();
    this.#attempt = attempt;
    return attempt;
  }

  #connecting(attempt: Attempt): void {
    this.#machine.setState('connecting');
    if (!attempt.aborted) void this.#connect(attempt);
  }

  async #connect(attempt: Attempt): Promise<void> {
    let credentials: AuthCredentials;
    try {
      credentials = await this.#credentials.next(attempt.signal);
    } catch (error) {
      if (attempt.aborted) return;
      this.#report(error);
      if (error instanceof UnauthorizedError) this.#stop('unauthenticated', { reason: error.message });
      else this.#retry({ reason: 'credentials unavailable' }, 'backoff');
      return;
    }
    if (attempt.aborted) return;
    if (credentials.ticket === undefined && credentials.token === undefined) {
      this.#stop('unauthenticated', { reason: 'no credentials' });
      return;
    }
    this.#open(attempt, credentials);
  }

  #open(attempt: Attempt, credentials: AuthCredentials): void {
    const { url, protocols, inBandToken } = attemptTarget(this.#options.url, credentials, this.#positions.toResume(), this.#options);
    this.#retryAfterMs = undefined;
    this.#authInFlight = undefined;
    try {
      attempt.open(this.#options.WebSocket, url, protocols, {
        open: () => this.#onOpen(attempt, inBandToken),
        frame: (data) => this.#onFrame(attempt, data),
        close: (code, reason) => this.#onClose(attempt, code, reason),
      });
    } catch (error) {
      // The constructor refuses only what no retry can fix (a malformed URL or subprotocol).
      this.#report(error);
      this.#stop('closed', { reason: 'websocket constructor failed' });
    }
  }

  #onOpen(attempt: Attempt, inBandToken: string | undefined): void {
    const protocol = attempt.socket?.protocol ?? '';
    if (protocol !== SUBPROTOCOL) {
      this.#fail(attempt, new ProtocolError(`server selected subprotocol '${protocol.slice(0, 32)}', not '${SUBPROTOCOL}'`));
      return;
    }
    // Listeners may close or log out from here on: after each of them, only go on if nothing changed.
    const current = (): boolean => !attempt.aborted && this.state === 'authenticating';
    this.#machine.setState('authenticating');
    if (!current()) return;
    this.#emitter.emit('open', undefined);
    if (!current()) return;
    if (inBandToken !== undefined) this.#sendAuth('connect', inBandToken);
  }

  // --- inbound ------------------------------------------------------------------------------------

  #onFrame(attempt: Attempt, raw: unknown): void {
    let frame: ServerMessage;
    try {
      if (typeof raw !== 'string') throw new ProtocolError('binary frames are not part of authsocket.v1');
      frame = parseServerMessage(raw);
    } catch (error) {
      this.#fail(attempt, error instanceof ProtocolError ? error : new ProtocolError('unreadable frame'));
      return;
    }
    switch (frame.type) {
      case MessageType.AuthOk:
        this.#onAuthOk(attempt, frame.user, frame.expiresAt, frame.streams);
        break;
      case MessageType.ReauthRequired:
        this.#onReauthRequired(attempt, frame.deadline, frame.reason);
        break;
      case MessageType.Message: {
        if (!isAuthenticated(this.state) || !this.#positions.accept(frame)) return;
        const { type: _type, ...message } = frame;
        if (frame.topic !== undefined) this.#topics.get(frame.topic)?.deliver(message);
        this.#emitter.emit('message', message);
        break;
      }
      case MessageType.Ack:
        this.#applyStreams(frame.streams);
        this.#requests.resolve(frame.id, frame);
        break;
      case MessageType.Result:
      case MessageType.Presence:
        this.#requests.resolve(frame.id, frame);
        break;
      case MessageType.Join:
      case MessageType.Leave:
        if (isAuthenticated(this.state)) this.#topics.get(frame.topic)?.presenceChanged(frame.type, frame.member);
        break;
      case MessageType.Error: {
        if (frame.code === 'rate_limited' && frame.retryAfter !== undefined) this.#retryAfterMs = frame.retryAfter;
        const error = new RequestRefusedError(frame.code, frame.message, frame.retryAfter, frame);
        if (!this.#requests.reject(frame.id, error)) this.#report(error);
        break;
      }
      case MessageType.Unsubscribed:
        this.#topics.get(frame.topic)?.ended(frame.reason, frame.message);
        break;
      case MessageType.LoggedOut:
        this.#logoutWaiters.resolveAll();
        break;
      case MessageType.Pong:
        break;
    }
  }

  #onAuthOk(attempt: Attempt, user: string, expiresAt: number, streams: Readonly<Record<string, StreamState>> | undefined): void {
    const state = this.state;
    if (!isAuthenticated(state) && state !== 'authenticating') return; // logged out meanwhile
    this.#applyStreams(streams);
    this.#authInFlight = undefined;
    this.#reconnect.reset();
    this.#credentials.accepted();
    if (state === 'authenticating') {
      // Before `open` is observable, so nothing an event listener sends can overtake these.
      this.#sendInitPayload();
      this.#resubscribe(attempt);
      this.#outbox.flush();
    } else if (state === 'reauthenticating') {
      this.#outbox.flush();
    }
    this.#machine.authenticated(user, expiresAt);
    if (attempt.aborted || this.state !== 'open') return;
    if (state === 'reauthenticating') this.#resubscribe(attempt);
    this.#authWaiters.resolveAll();
    this.#emitter.emit('authenticated', { user, expiresAt, reauth: state !== 'authenticating', ...(streams ? { streams } : {}) });
  }

  /** Positions the server reports are where this connection starts: later offsets only. */
  #applyStreams(streams: Readonly<Record<string, StreamState>> | undefined): void {
    for (const [stream, { epoch, offset }] of Object.entries(streams ?? {})) {
      if (epoch !== undefined && offset !== undefined) this.#positions.reset(stream, { epoch, offset });
    }
  }

  #onReauthRequired(attempt: Attempt, deadline: number, reason: ReauthReason): void {
    // A warning about the token an `auth` in flight replaces: that `auth` answers it.
    if (this.state === 'authenticating' || this.#authInFlight !== undefined) return;
    if (!isAuthenticated(this.state)) return;
    this.#emitter.emit('reauthRequired', { deadline, reason });
    if (!this.#credentials.canRefreshToken || attempt.aborted) return;
    if (this.state === 'open') this.#machine.setState('reauthenticating', { reason: `reauth_required: ${reason}` });
    if (attempt.aborted || (this.#refresh && !this.#refresh.signal.aborted)) return;
    const refresh = attempt.child();
    this.#refresh = refresh;
    void refreshInBand({
      credentials: this.#credentials,
      signal: refresh.signal,
      wanted: () => this.state === 'reauthenticating',
      tries: this.#options.maxReconnectAttempts,
      pause: (retry, signal) => this.#reconnect.sleep(this.#reconnect.delay(retry), signal),
      send: (token) => {
        this.#credentials.use(token);
        this.#sendAuth('inband', token);
      },
      report: (error) => this.#report(error),
      unauthorized: (error) => this.#stop('unauthenticated', { reason: error.message }),
    }).finally(() => {
      refresh.abort();
      if (this.#refresh === refresh) this.#refresh = undefined;
    });
  }

  // --- closing and reconnecting -------------------------------------------------------------------

  #onClose(attempt: Attempt, code: number, reason: string): void {
    this.#disconnected(code);
    const action = closeCodeAction(code);
    this.#emitter.emit('close', { code, reason, action });
    // A close listener that closed, logged out or restarted the client has decided what comes next.
    if (this.#attempt !== attempt || this.state === 'unauthenticated' || this.state === 'closed') return;
    const change = { code, reason };
    const next = nextStep(action, this.#retryAfterMs, () => this.#credentials.refused());
    this.#retryAfterMs = undefined;
    if ('retryIn' in next) this.#retry(change, next.retryIn);
    else if (next.stop === 'closed') this.#stop('closed', change);
    else {
      this.#report(new UnauthorizedError(`credentials refused (${code})`));
      this.#stop('unauthenticated', change);
    }
  }

  /** Schedules the next attempt after `delay` ms (or a backoff delay), unless attempts are used up. */
  #retry(change: Change, delay: number | 'backoff'): void {
    const ms = this.#reconnect.next(delay);
    if (ms === undefined) {
      this.#stop('closed', { code: change.code, reason: `gave up after ${this.#reconnect.failures} attempts` });
      return;
    }
    const attempt = this.#begin();
    this.#machine.setState('reconnecting', change);
    if (attempt.aborted) return;
    if (ms <= 0) {
      this.#connecting(attempt);
      return;
    }
    void this.#reconnect.sleep(ms, attempt.signal).then(() => {
      if (!attempt.aborted && this.state === 'reconnecting') this.#connecting(attempt);
    });
  }

  /** Drops the current socket or attempt and starts a new one at once (`setAuth` with `reconnect`). */
  #restart(reason: string): void {
    this.#dropSocket(CloseCode.Normal, reason);
    const attempt = this.#begin();
    if (this.state !== 'unauthenticated' && this.state !== 'reconnecting') {
      this.#machine.setState('reconnecting', { code: CloseCode.Normal, reason });
    }
    if (!attempt.aborted) this.#connecting(attempt);
  }

  /** Ends up in `closed` or `unauthenticated`: no socket, no timer, no browser listener left. */
  #stop(state: 'closed' | 'unauthenticated', change: Change): void {
    this.#dropSocket(CloseCode.Normal, change.reason ?? state);
    this.#attempt?.abort();
    this.#reconnect.stopListening();
    this.#machine.setState(state, change);
  }

  /** Closes the current socket (its late events are ignored) and reports the close at once. */
  #dropSocket(code: number, reason: string): void {
    const socket = this.#attempt?.release();
    if (!socket) return;
    const closeReason = toCloseReason(reason);
    try {
      socket.close(code, closeReason);
    } catch {
      // Already closing: nothing more to do.
    }
    this.#disconnected(code);
    this.#emitter.emit('close', { code, reason: closeReason, action: closeCodeAction(code) });
  }

  /** A frame broke the protocol: close with its code and follow the table like any close. */
  #fail(attempt: Attempt, error: ProtocolError): void {
    this.#report(error);
    const socket = attempt.release();
    if (!socket) return;
    const reason = toCloseReason(error.message);
    try {
      socket.close(error.closeCode, reason);
    } catch {
      socket.close();
    }
    this.#onClose(attempt, error.closeCode, reason);
  }

  /** The socket is gone: requests waiting on it fail, `logout()` is done, topics wait for the next socket. */
  #disconnected(code: number): void {
    this.#requests.rejectAll(new ConnectionLostError(code));
    this.#logoutWaiters.resolveAll();
    for (const topic of this.#topics.values()) topic.disconnected();
  }

  // --- outbound -----------------------------------------------------------------------------------

  #enqueue(frame: DataFrame, ack: boolean): Promise<unknown> | undefined {
    return this.#outbox.add(frame, ack, { open: this.#live() !== undefined, closed: this.state === 'closed' });
  }

  #transmit({ frame, ack }: Outbound): void {
    const token = this.#credentials.token;
    // A presence read carries no token, like `subscribe`: the connection's identity is what it reads with.
    const withToken = this.#options.perMessageToken && token !== undefined && frame.type !== MessageType.Presence ? { ...frame, token } : frame;
    // An ack's `data` (a message's), a result's (an rpc's) or a presence answer is what the caller's promise resolves with.
    if (ack) this.#request(withToken, { resolve: (answer) => ack.resolve(resolution(frame, answer)), reject: (error) => ack.reject(error) });
    // An rpc or presence read is always queued with a waiter: only `message` and `publish` go out without an id.
    else this.#write(withToken as Exclude<DataFrame, { type: typeof MessageType.Rpc | typeof MessageType.Presence }>);
  }

  /** Sends `frame` with a fresh `id`; `settler` learns the server's `ack` or `error`. */
  #request(frame: DataFrame | Exclude<ClientMessage, { type: typeof MessageType.Auth | typeof MessageType.Logout }>, settler: Settler): void {
    this.#write({ ...frame, id: this.#requests.add(settler) } as ClientMessage);
  }

  /** Sends `auth`; the first one of a socket carries the resume positions. */
  #sendAuth(kind: 'connect' | 'inband', token: string): void {
    this.#authInFlight = kind;
    this.#write({ type: MessageType.Auth, token, resume: kind === 'connect' ? this.#positions.toResume() : undefined });
  }

  #write(frame: ClientMessage): void {
    this.#attempt?.send(JSON.stringify(frame));
  }

  #sendInitPayload(): void {
    const { initPayload } = this.#options;
    if (initPayload === undefined) return;
    const data: unknown = typeof initPayload === 'function' ? (initPayload as () => unknown)() : initPayload;
    this.#write({ type: MessageType.Message, data });
  }

  #resubscribe(attempt: Attempt): void {
    for (const topic of this.#topics.values()) topic.resubscribe(attempt);
  }

  /** Rejects everything queued or waiting (`close()`, `logout()`) and drops the topics. */
  #cancelAll(why: string): void {
    const error = new CancelledError(why);
    this.#outbox.cancel(error);
    this.#requests.rejectAll(error);
    for (const topic of this.#topics.values()) topic.cancel(error);
  }

  // --- environment --------------------------------------------------------------------------------

  #listenToBrowser(): void {
    this.#reconnect.listenToBrowser(() => this.state === 'reconnecting');
  }

  #report(error: unknown): void {
    const reported =
      error instanceof Error ? error : new AuthSocketError('ERR_UNKNOWN', `non-error thrown: ${String(error).slice(0, 64)}`);
    this.#emitter.emit('error', reported);
  }
}

/** What a request's promise resolves with, by the frame it answers. */
function resolution(frame: DataFrame, { data, count, members }: Answer): unknown {
  if (frame.type === MessageType.Publish) return undefined;
  if (frame.type === MessageType.Presence) return members === undefined ? { count } : { count, members };
  return data;
}

function assertTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > LIMITS.topicLength) {
    throw new TypeError(`topic must be a string of 1-${LIMITS.topicLength} characters`);
  }
}
