import {
  AuthSocketError,
  type ClientMessage,
  type CloseAction,
  CloseCode,
  closeCodeAction,
  LIMITS,
  MessageType,
  parseServerMessage,
  ProtocolError,
  type ReauthReason,
  type ServerMessage,
  type StreamState,
  SUBPROTOCOL,
  toCloseReason,
} from '@authsocket/protocol';
import { backoff } from './backoff.js';
import { type Deferred, deferred, type Settler } from './deferred.js';
import { Emitter } from './emitter.js';
import { CancelledError, ConnectionLostError, RequestRefusedError, UnauthorizedError } from './errors.js';
import { type AuthCredentials, type AuthSocketOptions, type ResolvedOptions, resolveOptions, type SetAuthStrategy } from './options.js';
import { StreamPositions } from './positions.js';
import { BoundedQueue } from './queue.js';
import { singleFlight } from './single-flight.js';
import { canTransition, type ConnectionState, isAuthenticated, type StateChange } from './state.js';
import { connectionTarget, OPEN, type WebSocketLike } from './transport.js';

/** Payload of `authenticated`: every `auth_ok`. */
export interface AuthenticatedEvent {
  readonly user: string;
  /** Token expiry as the server sees it, ms since the epoch. */
  readonly expiresAt: number;
  /** False for the first authentication of a connection, true for an in-band re-authentication. */
  readonly reauth: boolean;
  /**
   * Where each stream this connection reads starts (`auth_ok.streams`). `recovered: false` after a
   * resume means the server could not replay what was missed: re-sync that stream's state.
   */
  readonly streams?: Readonly<Record<string, StreamState>>;
}

/** Payload of `message`: a server `message` frame without its `type`. Duplicates are never emitted. */
export interface InboundMessage {
  readonly data: unknown;
  readonly topic?: string;
  readonly stream?: string;
  readonly offset?: number;
  readonly epoch?: string;
}

/** Payload of `reauthRequired`. The client answers on its own when it has `getToken`. */
export interface ReauthRequiredEvent {
  /** Server time (ms since the epoch) after which the socket closes 4419. */
  readonly deadline: number;
  readonly reason: ReauthReason;
}

/** Payload of `close`: one per socket that closed, with what the client does next. */
export interface CloseEvent {
  readonly code: number;
  readonly reason: string;
  /** `closeCodeAction(code)` from `@authsocket/protocol`. */
  readonly action: CloseAction;
}

export interface AuthSocketEvents {
  /** The socket opened; authentication follows. */
  open: undefined;
  authenticated: AuthenticatedEvent;
  message: InboundMessage;
  reauthRequired: ReauthRequiredEvent;
  state: StateChange;
  close: CloseEvent;
  /** Errors that have no caller to reject: credential providers, refused frames without `id`, bad frames. */
  error: Error;
}

/** What `getSnapshot()` returns: a new frozen object on every change, the same one otherwise. */
export interface AuthSocketSnapshot {
  readonly state: ConnectionState;
  /** The authenticated user, while there is one. */
  readonly user?: string;
  readonly expiresAt?: number;
  /** Close code and reason of the last transition, when it had them. */
  readonly code?: number;
  readonly reason?: string;
}

export interface SendOptions {
  /** Give the frame an `id` and resolve the returned promise on the server's `ack`. */
  readonly ack?: boolean;
}

export interface SetAuthOptions {
  /** Default: the `setAuthStrategy` option. */
  readonly strategy?: SetAuthStrategy;
}

type DataFrame =
  | { readonly type: typeof MessageType.Message; readonly data: unknown }
  | { readonly type: typeof MessageType.Publish; readonly topic: string; readonly data: unknown };

interface Outbound {
  readonly frame: DataFrame;
  readonly ack?: Deferred;
}

interface Topic {
  /** `subscribe()` callers waiting for the server's confirmation. */
  waiters: Deferred[];
  /** The socket the last `subscribe` frame went out on; another socket means it must be sent again. */
  sentOn?: WebSocketLike;
  /** The socket on which the server confirmed it. */
  confirmedOn?: WebSocketLike;
  /** Streams the server named for this topic (subscribe `ack.streams`, `message.stream`): forgotten on unsubscribe. */
  readonly streams: Set<string>;
}

interface Change {
  readonly code?: number;
  readonly reason?: string;
}

/**
 * An authsocket.v1 connection that stays authenticated: it gets credentials from the application,
 * refreshes them in band when the server asks, reconnects with backoff when the server says so
 * (`closeCodeAction()`), queues frames while not authenticated and never delivers a message twice.
 */
export class AuthSocket {
  readonly #options: ResolvedOptions;
  readonly #emitter = new Emitter<AuthSocketEvents>((error, event) => {
    if (event !== 'error') this.#emitError(error);
  });
  readonly #storeListeners = new Set<() => void>();
  readonly #getToken: (() => Promise<string>) | undefined;
  readonly #getTicket: (() => Promise<string>) | undefined;
  readonly #queue: BoundedQueue<Outbound>;
  /** Requests waiting for `ack`, by id. */
  readonly #pending = new Map<string, Settler>();
  readonly #topics = new Map<string, Topic>();
  readonly #positions = new StreamPositions();
  readonly #sleeps = new Set<AbortController>();
  #logoutWaiters: Deferred[] = [];
  #authWaiters: Deferred[] = [];

  #state: ConnectionState = 'idle';
  #snapshot: AuthSocketSnapshot = Object.freeze({ state: 'idle' as const });
  #user: string | undefined;
  #expiresAt: number | undefined;
  #ticket: string | undefined;
  #token: string | undefined;
  #socket: WebSocketLike | undefined;
  /** Bumped whenever pending async work must be abandoned: each continuation compares it. */
  #run = 0;
  /** Consecutive failed attempts; reset by `auth_ok`. */
  #attempts = 0;
  /** Fresh credentials were fetched after a refusal and no `auth_ok` came since: a second refusal stops. */
  #refreshed = false;
  #needFresh = false;
  #retryAfterMs: number | undefined;
  #nextId = 0;
  #removeBrowserListeners: (() => void) | undefined;
  /** The socket an in-band refresh is under way on, so a second `reauth_required` does not start another. */
  #refreshingOn: WebSocketLike | undefined;
  /** An `auth` frame awaits its `auth_ok`: the first of the socket (`connect`) or a refresh (`inband`). */
  #authInFlight: 'connect' | 'inband' | undefined;

  constructor(options: AuthSocketOptions) {
    this.#options = resolveOptions(options);
    this.#ticket = this.#options.auth.ticket;
    this.#token = this.#options.auth.token;
    this.#getToken = this.#options.getToken && singleFlight(this.#options.getToken);
    this.#getTicket = this.#options.getTicket && singleFlight(this.#options.getTicket);
    this.#queue = new BoundedQueue(this.#options.maxQueueSize);
    // Handed around as callbacks (React's useSyncExternalStore), so bound once here.
    this.getSnapshot = this.getSnapshot.bind(this);
    this.subscribe = this.subscribe.bind(this);
  }

  /** The current state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Starts connecting. Does nothing while already connecting or connected. */
  connect(): void {
    if (this.#state !== 'idle' && this.#state !== 'closed' && this.#state !== 'unauthenticated') return;
    this.#attempts = 0;
    this.#refreshed = false;
    this.#dropSocket(CloseCode.Normal, 'reconnect');
    this.#listenToBrowser();
    this.#startAttempt();
  }

  /**
   * Sends `data` to the application on the server. While not authenticated it is queued and sent in
   * order after `auth_ok`. Without `ack` it returns nothing and throws `QueueFullError` (queue full) or
   * `CancelledError` (client closed). With `{ack: true}` it returns a promise that resolves on the
   * server's `ack`, and rejects with those errors, `RequestRefusedError` or `ConnectionLostError`.
   */
  send(data: unknown, options?: SendOptions & { readonly ack?: false }): void;
  send(data: unknown, options: SendOptions & { readonly ack: true }): Promise<void>;
  send(data: unknown, options?: SendOptions): Promise<void> | undefined;
  send(data: unknown, options: SendOptions = {}): Promise<void> | undefined {
    return this.#enqueue({ type: MessageType.Message, data }, options.ack === true);
  }

  /** Publishes `data` on `topic`; queued and acknowledged like `send()`. */
  publish(topic: string, data: unknown, options?: SendOptions & { readonly ack?: false }): void;
  publish(topic: string, data: unknown, options: SendOptions & { readonly ack: true }): Promise<void>;
  publish(topic: string, data: unknown, options?: SendOptions): Promise<void> | undefined;
  publish(topic: string, data: unknown, options: SendOptions = {}): Promise<void> | undefined {
    assertTopic(topic);
    return this.#enqueue({ type: MessageType.Publish, topic, data }, options.ack === true);
  }

  /**
   * `subscribe(topic)`: joins `topic`, now or once authenticated, and again after every reconnect.
   * Resolves when the server confirms; rejects with `RequestRefusedError` (`forbidden`), or
   * `CancelledError` when `unsubscribe()`, `logout()` or `close()` comes first.
   *
   * `subscribe(listener)`: the store side, for React's `useSyncExternalStore(client.subscribe,
   * client.getSnapshot)`: `listener` is called after every snapshot change; returns the unsubscriber.
   */
  subscribe(topic: string): Promise<void>;
  subscribe(listener: () => void): () => void;
  subscribe(topicOrListener: string | (() => void)): Promise<void> | (() => void) {
    if (typeof topicOrListener === 'function') {
      const listener = topicOrListener;
      this.#storeListeners.add(listener);
      return () => {
        this.#storeListeners.delete(listener);
      };
    }
    const topic = topicOrListener;
    assertTopic(topic);
    if (this.#state === 'closed') return Promise.reject(new CancelledError('client is closed'));
    let entry = this.#topics.get(topic);
    if (!entry) {
      entry = { waiters: [], streams: new Set() };
      this.#topics.set(topic, entry);
    }
    if (this.#state === 'open' && this.#socket && entry.confirmedOn === this.#socket) return Promise.resolve();
    const waiter = deferred();
    entry.waiters.push(waiter);
    if (this.#state === 'open' && entry.sentOn !== this.#socket) this.#sendSubscribe(topic, entry);
    return waiter.promise;
  }

  /** Leaves `topic`. Resolves on the server's `ack` (at once when not connected). */
  unsubscribe(topic: string): Promise<void> {
    assertTopic(topic);
    const entry = this.#topics.get(topic);
    if (!entry) return Promise.resolve();
    this.#topics.delete(topic);
    for (const stream of entry.streams) this.#positions.delete(stream);
    for (const waiter of entry.waiters) waiter.reject(new CancelledError(`unsubscribed from '${topic}' before confirmation`));
    if (this.#state !== 'open' || !this.#socket || entry.sentOn !== this.#socket) return Promise.resolve();
    const done = deferred();
    this.#request({ type: MessageType.Unsubscribe, topic }, {
      resolve: () => done.resolve(),
      reject: (error) => (error instanceof RequestRefusedError ? done.reject(error) : done.resolve()),
    });
    return done.promise;
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
    this.#ticket = auth.ticket;
    this.#token = auth.token;
    this.#needFresh = false;
    this.#refreshed = false;
    const state = this.#state;
    if (state === 'idle' || state === 'closed') return Promise.resolve();
    const waiter = deferred();
    this.#authWaiters.push(waiter);
    const inband = strategy === 'inband' && auth.token !== undefined && this.#socket?.readyState === OPEN;
    if (inband && isAuthenticated(state)) {
      this.#setState('reauthenticating', { reason: 'setAuth' });
      this.#sendAuth('inband', auth.token as string);
    } else if (inband && state === 'unauthenticated') {
      this.#setState('authenticating', { reason: 'setAuth' });
      this.#sendAuth('connect', auth.token as string);
    } else {
      this.#attempts = 0;
      this.#listenToBrowser();
      this.#restart('setAuth');
    }
    return waiter.promise;
  }

  /**
   * Logs out: sends `logout` (the server stops delivering at once and answers `logged_out`), forgets
   * the credentials, topics, stream positions and queued frames, and goes to `unauthenticated`. The
   * socket stays open for a later `setAuth()`. Resolves on `logged_out` (or at once without a socket).
   */
  logout(): Promise<void> {
    const state = this.#state;
    this.#ticket = undefined;
    this.#token = undefined;
    this.#needFresh = false;
    this.#positions.clear();
    this.#cancelAll('logged out');
    if (state === 'idle' || state === 'closed') return Promise.resolve();
    const socket = this.#socket;
    if (socket?.readyState === OPEN && (isAuthenticated(state) || state === 'authenticating')) {
      const waiter = deferred();
      this.#logoutWaiters.push(waiter);
      this.#write({ type: MessageType.Logout });
      this.#run++;
      this.#abortSleeps();
      this.#setState('unauthenticated', { reason: 'logout' });
      return waiter.promise;
    }
    this.#stop('unauthenticated', { reason: 'logout' });
    return Promise.resolve();
  }

  /** Closes for good: the socket closes 1000, pending requests reject, no timer or listener remains. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#cancelAll('client closed');
    this.#stop('closed', { code: CloseCode.Normal, reason: 'client closed' });
  }

  /** Listens to a typed event; returns the function that stops listening. */
  on<K extends keyof AuthSocketEvents>(event: K, listener: (payload: AuthSocketEvents[K]) => void): () => void {
    return this.#emitter.on(event, listener);
  }

  /** The current snapshot, for `useSyncExternalStore`: the same object until something changes. */
  getSnapshot(): AuthSocketSnapshot {
    return this.#snapshot;
  }

  // --- connecting ---------------------------------------------------------------------------------

  #startAttempt(): void {
    const run = ++this.#run;
    this.#setState('connecting');
    if (run !== this.#run) return;
    void this.#attempt(run);
  }

  async #attempt(run: number): Promise<void> {
    let credentials: AuthCredentials;
    try {
      credentials = await this.#credentials();
    } catch (error) {
      if (run !== this.#run) return;
      this.#emitError(error);
      if (error instanceof UnauthorizedError) this.#stop('unauthenticated', { reason: error.message });
      else this.#retry({ reason: 'credentials unavailable' }, 'backoff');
      return;
    }
    if (run !== this.#run) return;
    if (credentials.ticket === undefined && credentials.token === undefined) {
      this.#stop('unauthenticated', { reason: 'no credentials' });
      return;
    }
    this.#open(credentials);
  }

  /** Credentials for the next connection: a new ticket each time (single use), the token until refused. */
  async #credentials(): Promise<AuthCredentials> {
    const fresh = this.#needFresh;
    let ticket: string | undefined;
    if (this.#getTicket) {
      ticket = await this.#getTicket();
    } else if (this.#ticket !== undefined) {
      ticket = this.#ticket;
      this.#ticket = undefined;
    }
    let token = this.#token;
    if ((token === undefined || fresh) && this.#getToken) {
      token = await this.#getToken();
      this.#token = token;
    }
    this.#needFresh = false;
    return { ticket, token };
  }

  #open(credentials: AuthCredentials): void {
    const { handshakeToken, ticketIn } = this.#options;
    const atHandshake = handshakeToken !== false;
    const inBandToken = atHandshake ? undefined : credentials.token;
    const target = connectionTarget(
      this.#options.url,
      {
        ticket: credentials.ticket,
        token: atHandshake ? credentials.token : undefined,
        // Resume positions ride in the `auth` frame when there is one, else in the handshake.
        resume: inBandToken === undefined ? this.#positions.toResume() : undefined,
      },
      { ticket: ticketIn, token: atHandshake ? handshakeToken : 'protocol' },
    );
    let socket: WebSocketLike;
    try {
      socket = new this.#options.WebSocket(target.url, target.protocols);
    } catch (error) {
      // The constructor refuses only what no retry can fix (a malformed URL or subprotocol).
      this.#emitError(error);
      this.#stop('closed', { reason: 'websocket constructor failed' });
      return;
    }
    this.#socket = socket;
    this.#retryAfterMs = undefined;
    this.#authInFlight = undefined;
    let opened = false;
    socket.addEventListener('open', () => {
      if (socket !== this.#socket) return;
      opened = true;
      this.#onOpen(socket, inBandToken);
    });
    socket.addEventListener('message', (event) => {
      if (socket === this.#socket) this.#onFrame(socket, event.data);
    });
    socket.addEventListener('close', (event) => {
      // A socket that never opened was refused at the upgrade or never reached: back off.
      if (socket === this.#socket) this.#onClose(opened ? event.code : CloseCode.Abnormal, opened ? event.reason : '');
    });
    // The `close` event that always follows carries the outcome.
    socket.addEventListener('error', () => {});
  }

  #onOpen(socket: WebSocketLike, inBandToken: string | undefined): void {
    if (socket.protocol !== SUBPROTOCOL) {
      this.#fail(new ProtocolError(`server selected subprotocol '${socket.protocol.slice(0, 32)}', not '${SUBPROTOCOL}'`));
      return;
    }
    // Listeners may close or log out from here on: after each of them, only go on if nothing changed.
    const current = (): boolean => socket === this.#socket && this.#state === 'authenticating';
    this.#setState('authenticating');
    if (!current()) return;
    this.#emitter.emit('open', undefined);
    if (!current()) return;
    if (inBandToken !== undefined) this.#sendAuth('connect', inBandToken);
  }

  // --- inbound ------------------------------------------------------------------------------------

  #onFrame(socket: WebSocketLike, raw: unknown): void {
    let frame: ServerMessage;
    try {
      if (typeof raw !== 'string') throw new ProtocolError('binary frames are not part of authsocket.v1');
      frame = parseServerMessage(raw);
    } catch (error) {
      this.#fail(error instanceof ProtocolError ? error : new ProtocolError('unreadable frame'));
      return;
    }
    switch (frame.type) {
      case MessageType.AuthOk:
        this.#onAuthOk(socket, frame.user, frame.expiresAt, frame.streams);
        break;
      case MessageType.ReauthRequired:
        this.#onReauthRequired(socket, frame.deadline, frame.reason);
        break;
      case MessageType.Message: {
        if (!isAuthenticated(this.#state) || !this.#positions.accept(frame)) return;
        if (frame.topic !== undefined && frame.stream !== undefined) this.#topics.get(frame.topic)?.streams.add(frame.stream);
        const { type: _type, ...message } = frame;
        this.#emitter.emit('message', message);
        break;
      }
      case MessageType.Ack: {
        this.#applyStreams(frame.streams);
        const settler = this.#pending.get(frame.id);
        this.#pending.delete(frame.id);
        settler?.resolve(frame.streams);
        break;
      }
      case MessageType.Error: {
        if (frame.code === 'rate_limited' && frame.retryAfter !== undefined) this.#retryAfterMs = frame.retryAfter;
        const error = new RequestRefusedError(frame.code, frame.message, frame.retryAfter);
        const settler = frame.id === undefined ? undefined : this.#pending.get(frame.id);
        if (settler && frame.id !== undefined) {
          this.#pending.delete(frame.id);
          settler.reject(error);
        } else {
          this.#emitError(error);
        }
        break;
      }
      case MessageType.LoggedOut: {
        const waiters = this.#logoutWaiters;
        this.#logoutWaiters = [];
        for (const waiter of waiters) waiter.resolve();
        break;
      }
      case MessageType.Pong:
        break;
    }
  }

  #onAuthOk(
    socket: WebSocketLike,
    user: string,
    expiresAt: number,
    streams: Readonly<Record<string, StreamState>> | undefined,
  ): void {
    const state = this.#state;
    if (!isAuthenticated(state) && state !== 'authenticating') return; // logged out meanwhile
    this.#applyStreams(streams);
    this.#authInFlight = undefined;
    this.#user = user;
    this.#expiresAt = expiresAt;
    this.#attempts = 0;
    this.#refreshed = false;
    if (state === 'authenticating') {
      // Before `open` is observable, so nothing an event listener sends can overtake these.
      this.#sendInitPayload();
      this.#resubscribe(socket);
      this.#flush();
    } else if (state === 'reauthenticating') {
      this.#flush();
    }
    if (state === 'open') this.#publishSnapshot({});
    else this.#setState('open');
    if (socket !== this.#socket || this.#state !== 'open') return;
    if (state === 'reauthenticating') this.#resubscribe(socket);
    const waiters = this.#authWaiters;
    this.#authWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.#emitter.emit('authenticated', {
      user,
      expiresAt,
      reauth: state !== 'authenticating',
      ...(streams ? { streams } : {}),
    });
  }

  /** Positions the server reports are where this connection starts: later offsets only. */
  #applyStreams(streams: Readonly<Record<string, StreamState>> | undefined): void {
    for (const [stream, { epoch, offset }] of Object.entries(streams ?? {})) {
      if (epoch !== undefined && offset !== undefined) this.#positions.reset(stream, { epoch, offset });
    }
  }

  #onReauthRequired(socket: WebSocketLike, deadline: number, reason: ReauthReason): void {
    // A warning about the token an `auth` in flight replaces: that `auth` answers it.
    if (this.#state === 'authenticating' || this.#authInFlight !== undefined) return;
    if (!isAuthenticated(this.#state)) return;
    this.#emitter.emit('reauthRequired', { deadline, reason });
    if (!this.#getToken || socket !== this.#socket) return;
    if (this.#state === 'open') this.#setState('reauthenticating', { reason: `reauth_required: ${reason}` });
    if (socket !== this.#socket || this.#refreshingOn === socket) return;
    this.#refreshingOn = socket;
    void this.#refreshInBand(socket).finally(() => {
      if (this.#refreshingOn === socket) this.#refreshingOn = undefined;
    });
  }

  /** Gets a fresh token (shared with any concurrent need) and sends it on the live socket. */
  async #refreshInBand(socket: WebSocketLike): Promise<void> {
    const current = (): boolean => socket === this.#socket && this.#state === 'reauthenticating';
    const getToken = this.#getToken as () => Promise<string>;
    for (let attempt = 0; ; attempt++) {
      try {
        const token = await getToken();
        if (!current()) return;
        this.#token = token;
        this.#sendAuth('inband', token);
        return;
      } catch (error) {
        if (!current()) return;
        this.#emitError(error);
        if (error instanceof UnauthorizedError) {
          this.#stop('unauthenticated', { reason: error.message });
          return;
        }
        // Past the bound the server's deadline decides: it closes 4419 and the reconnect path takes over.
        if (attempt + 1 >= this.#options.maxReconnectAttempts) return;
        await this.#sleep(this.#backoff(attempt));
        if (!current()) return;
      }
    }
  }

  // --- closing and reconnecting -------------------------------------------------------------------

  #onClose(code: number, reason: string): void {
    this.#socket = undefined;
    this.#failPending(code);
    this.#resolveLogoutWaiters();
    const action = closeCodeAction(code);
    const run = this.#run;
    this.#emitter.emit('close', { code, reason, action });
    if (run !== this.#run || this.#state === 'unauthenticated' || this.#state === 'closed') return;
    const change = { code, reason };
    switch (action) {
      case 'stop':
        this.#stop('closed', change);
        return;
      case 'backoff':
        this.#retry(change, 'backoff');
        return;
      case 'retry-after': {
        const hint = this.#retryAfterMs;
        this.#retryAfterMs = undefined;
        this.#retry(change, hint ?? 'backoff');
        return;
      }
      case 'refresh-once':
      case 'refresh-now':
        if (this.#refreshed || (!this.#getToken && !this.#getTicket)) {
          this.#emitError(new UnauthorizedError(`credentials refused (${code})`));
          this.#stop('unauthenticated', change);
          return;
        }
        this.#refreshed = true;
        this.#needFresh = true;
        this.#retry(change, 0);
        return;
    }
  }

  /** Schedules the next attempt after `delay` ms (or a backoff delay), unless attempts are used up. */
  #retry(change: Change, delay: number | 'backoff'): void {
    if (this.#attempts >= this.#options.maxReconnectAttempts) {
      this.#stop('closed', { code: change.code, reason: `gave up after ${this.#attempts} attempts` });
      return;
    }
    const ms = delay === 'backoff' ? this.#backoff(this.#attempts) : delay;
    this.#attempts++;
    const run = ++this.#run;
    this.#setState('reconnecting', change);
    if (run !== this.#run) return;
    if (ms <= 0) {
      this.#startAttempt();
      return;
    }
    void this.#sleep(ms).then(() => {
      if (run === this.#run && this.#state === 'reconnecting') this.#startAttempt();
    });
  }

  /** Drops the current socket or attempt and starts a new one at once (`setAuth` with `reconnect`). */
  #restart(reason: string): void {
    this.#dropSocket(CloseCode.Normal, reason);
    this.#run++;
    this.#abortSleeps();
    if (this.#state !== 'unauthenticated' && this.#state !== 'reconnecting') {
      this.#setState('reconnecting', { code: CloseCode.Normal, reason });
    }
    this.#startAttempt();
  }

  /** Ends up in `closed` or `unauthenticated`: no socket, no timer, no browser listener left. */
  #stop(state: 'closed' | 'unauthenticated', change: Change): void {
    this.#run++;
    this.#abortSleeps();
    this.#dropSocket(CloseCode.Normal, change.reason ?? state);
    this.#removeBrowserListeners?.();
    this.#removeBrowserListeners = undefined;
    this.#setState(state, change);
  }

  /** Closes the current socket (its own late events are ignored) and reports the close at once. */
  #dropSocket(code: number, reason: string): void {
    const socket = this.#socket;
    if (!socket) return;
    this.#socket = undefined;
    const closeReason = toCloseReason(reason);
    try {
      socket.close(code, closeReason);
    } catch {
      // Already closing: nothing more to do.
    }
    this.#failPending(code);
    this.#resolveLogoutWaiters();
    this.#emitter.emit('close', { code, reason: closeReason, action: closeCodeAction(code) });
  }

  /** A frame broke the protocol: close with its code and follow the table like any close. */
  #fail(error: ProtocolError): void {
    this.#emitError(error);
    const socket = this.#socket;
    if (!socket) return;
    const reason = toCloseReason(error.message);
    try {
      socket.close(error.closeCode, reason);
    } catch {
      socket.close();
    }
    this.#onClose(error.closeCode, reason);
  }

  // --- outbound -----------------------------------------------------------------------------------

  #enqueue(frame: DataFrame, ack: boolean): Promise<void> | undefined {
    const waiter = ack ? deferred() : undefined;
    try {
      if (this.#state === 'closed') throw new CancelledError('client is closed');
      const item: Outbound = { frame, ack: waiter };
      if (this.#state === 'open' && this.#socket) this.#transmit(item);
      else this.#queue.push(item);
    } catch (error) {
      if (!waiter) throw error;
      waiter.reject(error as Error);
    }
    return waiter?.promise;
  }

  #transmit({ frame, ack }: Outbound): void {
    const withToken = this.#options.perMessageToken && this.#token !== undefined ? { ...frame, token: this.#token } : frame;
    if (ack) this.#request(withToken, { resolve: () => ack.resolve(), reject: (error) => ack.reject(error) });
    else this.#write(withToken);
  }

  /** Sends `frame` with a fresh `id`; `settler` learns the server's `ack` or `error`. */
  #request(frame: Exclude<ClientMessage, { type: typeof MessageType.Auth | typeof MessageType.Logout }>, settler: Settler): void {
    const id = String(++this.#nextId);
    this.#pending.set(id, settler);
    this.#write({ ...frame, id });
  }

  /** Sends `auth`; the first one of a socket carries the resume positions. */
  #sendAuth(kind: 'connect' | 'inband', token: string): void {
    this.#authInFlight = kind;
    this.#write({ type: MessageType.Auth, token, resume: kind === 'connect' ? this.#positions.toResume() : undefined });
  }

  #write(frame: ClientMessage): void {
    this.#socket?.send(JSON.stringify(frame));
  }

  #flush(): void {
    for (const item of this.#queue.drain()) this.#transmit(item);
  }

  #sendInitPayload(): void {
    const { initPayload } = this.#options;
    if (initPayload === undefined) return;
    const data: unknown = typeof initPayload === 'function' ? (initPayload as () => unknown)() : initPayload;
    this.#write({ type: MessageType.Message, data });
  }

  #resubscribe(socket: WebSocketLike): void {
    for (const [topic, entry] of this.#topics) if (entry.sentOn !== socket) this.#sendSubscribe(topic, entry);
  }

  #sendSubscribe(topic: string, entry: Topic): void {
    const socket = this.#socket;
    entry.sentOn = socket;
    this.#request(
      { type: MessageType.Subscribe, topic },
      {
        resolve: (streams) => {
          entry.confirmedOn = socket;
          for (const stream of Object.keys(streams ?? {})) entry.streams.add(stream);
          // Left before the server confirmed: its stream must not be resumed.
          if (this.#topics.get(topic) !== entry) for (const stream of entry.streams) this.#positions.delete(stream);
          this.#settleTopic(topic, entry);
        },
        reject: (error) => {
          // A lost connection keeps the topic: it is sent again on the next socket.
          if (!(error instanceof RequestRefusedError) || this.#topics.get(topic) !== entry) return;
          this.#topics.delete(topic);
          const waiters = entry.waiters;
          entry.waiters = [];
          if (waiters.length === 0) this.#emitError(error);
          for (const waiter of waiters) waiter.reject(error);
        },
      },
    );
  }

  #settleTopic(topic: string, entry: Topic): void {
    if (this.#topics.get(topic) !== entry) return;
    const waiters = entry.waiters;
    entry.waiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  #failPending(code: number): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    const error = new ConnectionLostError(code);
    for (const settler of pending) settler.reject(error);
  }

  #resolveLogoutWaiters(): void {
    const waiters = this.#logoutWaiters;
    this.#logoutWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  /** Rejects everything queued or waiting (`close()`, `logout()`) and forgets the topics. */
  #cancelAll(why: string): void {
    const error = new CancelledError(why);
    for (const item of this.#queue.drain()) item.ack?.reject(error);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const settler of pending) settler.reject(error);
    const topics = [...this.#topics.values()];
    this.#topics.clear();
    for (const entry of topics) for (const waiter of entry.waiters) waiter.reject(error);
  }

  // --- state, time, environment -------------------------------------------------------------------

  #setState(newState: ConnectionState, change: Change = {}): void {
    const oldState = this.#state;
    if (oldState === newState) return;
    if (!canTransition(oldState, newState)) {
      throw new AuthSocketError('ERR_INVALID_STATE', `invalid state transition ${oldState} -> ${newState}`);
    }
    this.#state = newState;
    if (newState === 'unauthenticated' || newState === 'closed') {
      this.#user = undefined;
      this.#expiresAt = undefined;
      const waiters = this.#authWaiters;
      this.#authWaiters = [];
      const error =
        newState === 'closed' ? new CancelledError(change.reason ?? 'client closed') : new UnauthorizedError(change.reason ?? 'unauthenticated');
      for (const waiter of waiters) waiter.reject(error);
    }
    this.#publishSnapshot(change);
    this.#emitter.emit('state', { oldState, newState, ...definedOnly(change) });
  }

  #publishSnapshot(change: Change): void {
    this.#snapshot = Object.freeze(
      definedOnly({ state: this.#state, user: this.#user, expiresAt: this.#expiresAt, code: change.code, reason: change.reason }),
    );
    for (const listener of [...this.#storeListeners]) {
      try {
        listener();
      } catch (error) {
        this.#emitError(error);
      }
    }
  }

  #backoff(attempt: number): number {
    const { minReconnectDelayMs: minDelayMs, maxReconnectDelayMs: maxDelayMs, random } = this.#options;
    return backoff(attempt, { minDelayMs, maxDelayMs }, random);
  }

  /** Waits `ms` through the injected `wait`; `close()` and browser wake-ups cut it short. */
  async #sleep(ms: number): Promise<void> {
    const controller = new AbortController();
    this.#sleeps.add(controller);
    const aborted = new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
    try {
      await Promise.race([this.#options.wait(ms, controller.signal).catch(() => undefined), aborted]);
    } finally {
      this.#sleeps.delete(controller);
      controller.abort();
    }
  }

  #abortSleeps(): void {
    for (const controller of [...this.#sleeps]) controller.abort();
  }

  /** In browsers: `online`, or the page becoming visible, ends a reconnect wait early. */
  #listenToBrowser(): void {
    if (this.#removeBrowserListeners || !this.#options.reconnectOnBrowserEvents) return;
    const scope = globalThis as Partial<Pick<Window, 'addEventListener' | 'removeEventListener' | 'document'>>;
    if (typeof scope.addEventListener !== 'function' || typeof scope.removeEventListener !== 'function') return;
    const doc = scope.document;
    const wake = (): void => {
      if (this.#state === 'reconnecting') this.#abortSleeps();
    };
    const onVisibility = (): void => {
      if (doc?.visibilityState === 'visible') wake();
    };
    scope.addEventListener('online', wake);
    doc?.addEventListener('visibilitychange', onVisibility);
    this.#removeBrowserListeners = () => {
      scope.removeEventListener?.('online', wake);
      doc?.removeEventListener('visibilitychange', onVisibility);
    };
  }

  #emitError(error: unknown): void {
    const reported =
      error instanceof Error ? error : new AuthSocketError('ERR_UNKNOWN', `non-error thrown: ${String(error).slice(0, 64)}`);
    this.#emitter.emit('error', reported);
  }
}

function assertTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > LIMITS.topicLength) {
    throw new TypeError(`topic must be a string of 1-${LIMITS.topicLength} characters`);
  }
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
