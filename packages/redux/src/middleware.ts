import { type AuthCredentials, AuthSocket, type AuthSocketOptions, type InboundMessage, UnauthorizedError } from '@authsocket/client';
import { isPlainObject } from '@authsocket/protocol';
import type { Action, Dispatch, Middleware, MiddlewareAPI } from 'redux';
import { type ActionTypeNames, type ResolvedActionTypes, resolveActionTypes } from './action-types.js';
import {
  type AuthSocketActions,
  createActions,
  isAction,
  isServerAction,
  isWebSocketAction,
  type ServerAction,
  type ServerActionMeta,
} from './actions.js';
import { type AuthSocketReducer, createAuthSocketReducer } from './reducer.js';

/** Options shared by both ways of building the middleware. */
export interface CommonMiddlewareOptions<T extends Partial<ActionTypeNames>> {
  /** Renames any action type; see `DEFAULT_ACTION_TYPES`. Literal names flow into the action creators' types. */
  readonly actionTypes?: T;
  /**
   * Decides whether a server message that is an action (an object with a string `type`) is dispatched.
   * Messages without a string `type`, and actions whose type is one of this middleware's own, are
   * dropped before it is asked. A filter that throws drops the message and dispatches an `error`
   * action. Default: dispatch every such action.
   */
  readonly filterServerAction?: (action: ServerAction, message: InboundMessage) => boolean;
  /**
   * Let the control actions (`websocketAuth`, `websocketLogout`, `connect`, `disconnect`) reach the
   * reducers too (`next(action)` first, then act), so they show in the store's log. Default `false`: they are
   * consumed, so a token in `websocketAuth` never lands in the store or in devtools.
   */
  readonly forwardControlActions?: boolean;
  /**
   * Connect when the middleware is attached to a store (in a microtask, once the store exists). With
   * `url`, only if there are credentials at hand (a token from `selectToken`, or a credential option);
   * otherwise the first `websocketAuth` connects. Default `true`.
   */
  readonly autoConnect?: boolean;
}

/** Build the client from its options; credentials can come from the store. */
export interface UrlMiddlewareOptions<T extends Partial<ActionTypeNames>, S>
  extends CommonMiddlewareOptions<T>,
    Omit<AuthSocketOptions, 'getToken'> {
  readonly client?: undefined;
  /**
   * Reads the current JWT from the store (your auth slice). The client calls it whenever it needs a
   * token: to connect, on `reauth_required` (in-band refresh), after a 4401/4419 close. Nothing there
   * (null, undefined, '') means logged out: the client stops instead of retrying.
   */
  readonly selectToken?: (state: S) => string | null | undefined;
  /**
   * Gets a fresh JWT with the store at hand, e.g. by dispatching your refresh thunk. Takes precedence
   * over `selectToken`. Throw `UnauthorizedError` (from `@authsocket/client`) to stop; other errors
   * are retried with backoff.
   */
  readonly getToken?: (api: MiddlewareAPI<Dispatch, S>) => Promise<string>;
}

/** Use an `AuthSocket` you built: it keeps its own credential options (`getToken`, `getTicket`). */
export interface ClientMiddlewareOptions<T extends Partial<ActionTypeNames>> extends CommonMiddlewareOptions<T> {
  readonly client: AuthSocket;
  readonly url?: undefined;
  readonly selectToken?: undefined;
  readonly getToken?: undefined;
}

export type AuthSocketMiddlewareOptions<T extends Partial<ActionTypeNames> = Partial<ActionTypeNames>, S = unknown> =
  | UrlMiddlewareOptions<T, S>
  | ClientMiddlewareOptions<T>;

export interface AuthSocketMiddleware<N extends ActionTypeNames, S> {
  /** Add it to your store: `configureStore({ middleware: (gDM) => gDM().concat(middleware) })`. */
  readonly middleware: Middleware<Record<never, never>, S>;
  /** Typed action creators for every action type, each with `.type` and `.match()`. */
  readonly actions: AuthSocketActions<N>;
  /** The action type names in force. */
  readonly actionTypes: N;
  /** An optional reducer over the lifecycle actions: `{status, user, expiresAt, lastClose, lastError}`. */
  readonly reducer: AuthSocketReducer;
  /** The client underneath, for what actions do not cover (topics, acks). */
  readonly client: AuthSocket;
  /** Unhooks the middleware from the client and closes the client if the middleware created it. */
  close(): void;
}

const OWN_OPTIONS = ['actionTypes', 'filterServerAction', 'forwardControlActions', 'autoConnect', 'selectToken', 'getToken', 'client'] as const;

/**
 * Redux middleware over an `AuthSocket`:
 * - an action with `meta: {websocket: true}` reaches the reducers, then is sent as a protocol
 *   `message` without its `meta` (queued by the client while not authenticated);
 * - `loggedIn` (`{payload: {token}}`) reaches the reducers, then `websocketAuth` is dispatched, which
 *   becomes the protocol's `auth` (`client.setAuth`, in band on a live socket);
 * - `logout` reaches the reducers, then `websocketLogout` is dispatched, which becomes `logout`;
 * - server messages that are actions are dispatched with `meta.fromServer: true`, never sent back;
 * - lifecycle actions report open, authenticated, reauth required, logged out, closed, errors and
 *   state changes.
 */
export function createAuthSocketMiddleware<const T extends Partial<ActionTypeNames> = Record<never, never>, S = unknown>(
  options: AuthSocketMiddlewareOptions<T, S>,
): AuthSocketMiddleware<ResolvedActionTypes<T>, S> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const types = resolveActionTypes(options.actionTypes);
  const actions = createActions(types);
  const reducer = createAuthSocketReducer(types);
  const { filterServerAction, forwardControlActions = false, autoConnect = true } = options;
  if (filterServerAction !== undefined && typeof filterServerAction !== 'function') {
    throw new TypeError(`option 'filterServerAction' must be a function`);
  }

  let api: MiddlewareAPI<Dispatch<Action>, S> | undefined;
  const ownsClient = options.client === undefined;
  const client = ownsClient ? buildClient(options as UrlMiddlewareOptions<T, S>, () => api) : (options.client as AuthSocket);
  if (!ownsClient && !(client instanceof AuthSocket)) throw new TypeError(`option 'client' must be an AuthSocket`);
  if (!ownsClient) {
    const conflict = (['url', 'selectToken', 'getToken'] as const).find((key) => (options as unknown as Record<string, unknown>)[key] !== undefined);
    if (conflict) throw new TypeError(`options 'client' and '${conflict}' conflict: pass one`);
  }

  /** Actions this middleware made from server messages: they only ever go to `next`. */
  const fromServer = new WeakSet<object>();
  /** Types a server message may never use: they would drive this middleware or forge its reports. */
  const reserved = new Set<string>(Object.values(types));
  const controls = new Set<string>([types.websocketAuth, types.websocketLogout, types.connect, types.disconnect]);
  const unhook: Array<() => void> = [];
  let stopped = false;

  const report = (error: unknown): void => {
    if (!api) return;
    try {
      api.dispatch(actions.error(error));
    } catch {
      // A reducer threw on the error action itself: nothing more can be reported.
    }
  };
  const dispatch = (action: { readonly type: string }): void => {
    if (!api || stopped) return;
    try {
      api.dispatch(action);
    } catch (error) {
      report(error);
    }
  };

  const onServerMessage = (message: InboundMessage): void => {
    const data = message.data;
    if (!isAction(data) || reserved.has(data.type)) return;
    const original = (data as { meta?: unknown }).meta;
    const { websocket: _websocket, ...meta } = isPlainObject(original) ? original : {};
    const serverMeta: ServerActionMeta = { ...meta, fromServer: true, ...(message.topic !== undefined ? { topic: message.topic } : {}) };
    const action: ServerAction = { ...(data as Record<string, unknown>), type: data.type, meta: serverMeta };
    if (filterServerAction) {
      let accepted: boolean;
      try {
        accepted = filterServerAction(action, message) === true;
      } catch (error) {
        report(error);
        return;
      }
      if (!accepted) return;
    }
    fromServer.add(action);
    dispatch(action);
  };

  const authenticate = (payload: unknown): void => {
    const credentials = toCredentials(payload);
    if (!credentials) {
      report(new TypeError(`'${types.websocketAuth}' expects a token string or {ticket?, token?} as payload`));
      return;
    }
    const before = client.state;
    client.setAuth(credentials).catch(() => {
      // The outcome is reported by the lifecycle actions (stateChanged, closed, error).
    });
    if (before === 'idle' || before === 'closed') client.connect();
  };

  const control = (action: { readonly type: string; readonly payload?: unknown }): void => {
    switch (action.type) {
      case types.websocketAuth:
        authenticate(action.payload);
        return;
      case types.websocketLogout:
        client.logout().then(
          () => dispatch(actions.loggedOut()),
          (error: unknown) => report(error),
        );
        return;
      case types.connect:
        client.connect();
        return;
      case types.disconnect:
        client.close();
        return;
    }
  };

  const send = (action: { readonly type: string; readonly meta?: unknown }): void => {
    const { meta: _meta, ...frame } = action;
    try {
      client.send(frame);
    } catch (error) {
      // QueueFullError (the queue is full) or CancelledError (the client is closed).
      report(error);
    }
  };

  const hasCredentials = (): boolean => {
    if (!ownsClient) return true;
    const url = options as UrlMiddlewareOptions<T, S>;
    if (url.auth !== undefined || url.token !== undefined || url.ticket !== undefined || url.getTicket !== undefined) return true;
    if (url.getToken !== undefined) return true;
    if (url.selectToken === undefined || !api) return false;
    try {
      return isToken(url.selectToken(api.getState()));
    } catch (error) {
      report(error);
      return false;
    }
  };

  const middleware: Middleware<Record<never, never>, S> = (store) => {
    if (api) throw new Error('this authsocket middleware is already attached to a store: create one per store');
    api = store as MiddlewareAPI<Dispatch<Action>, S>;
    unhook.push(
      client.on('open', () => dispatch(actions.open())),
      client.on('authenticated', (event) => dispatch(actions.authenticated(event))),
      client.on('reauthRequired', (event) => dispatch(actions.reauthRequired(event))),
      client.on('close', (event) => dispatch(actions.closed(event))),
      client.on('state', (change) => dispatch(actions.stateChanged(change))),
      client.on('error', (error) => {
        if (!stopped) report(error);
      }),
      client.on('message', (message) => {
        if (!stopped) onServerMessage(message);
      }),
    );
    // Redux refuses dispatches while the store is being built; the client's first events dispatch.
    if (autoConnect) {
      queueMicrotask(() => {
        if (!stopped && client.state === 'idle' && hasCredentials()) client.connect();
      });
    }
    return (next) => (action) => {
      if (!isAction(action) || fromServer.has(action) || isServerAction(action)) return next(action);
      if (controls.has(action.type)) {
        const result = forwardControlActions ? next(action) : action;
        if (!stopped) control(action);
        return result;
      }
      const result = next(action);
      if (stopped) return result;
      if (action.type === types.loggedIn) {
        const token = (action as { payload?: { token?: unknown } }).payload?.token;
        if (isToken(token)) dispatch(actions.websocketAuth(token));
        else report(new TypeError(`'${types.loggedIn}' expects {payload: {token: string}}`));
      } else if (action.type === types.logout) {
        dispatch(actions.websocketLogout());
      } else if (isWebSocketAction(action)) {
        send(action);
      }
      return result;
    };
  };

  return Object.freeze({
    middleware,
    actions,
    actionTypes: types,
    reducer,
    client,
    close() {
      if (stopped) return;
      stopped = true;
      for (const off of unhook.splice(0)) off();
      if (ownsClient) client.close();
    },
  });
}

function buildClient<T extends Partial<ActionTypeNames>, S>(
  options: UrlMiddlewareOptions<T, S>,
  getApi: () => MiddlewareAPI<Dispatch<Action>, S> | undefined,
): AuthSocket {
  const { getToken, selectToken } = options;
  if (getToken !== undefined && typeof getToken !== 'function') throw new TypeError(`option 'getToken' must be a function`);
  if (selectToken !== undefined && typeof selectToken !== 'function') throw new TypeError(`option 'selectToken' must be a function`);
  const clientOptions: Record<string, unknown> = { ...options };
  for (const key of OWN_OPTIONS) delete clientOptions[key];
  const store = (): MiddlewareAPI<Dispatch, S> => {
    const api = getApi();
    if (!api) throw new UnauthorizedError('the middleware is not attached to a store yet');
    return api as MiddlewareAPI<Dispatch, S>;
  };
  const tokenProvider =
    getToken !== undefined
      ? () => getToken(store())
      : selectToken !== undefined
        ? async () => {
            const token = selectToken(store().getState());
            if (!isToken(token)) throw new UnauthorizedError('no token in the store');
            return token;
          }
        : undefined;
  return new AuthSocket({ ...(clientOptions as unknown as AuthSocketOptions), getToken: tokenProvider });
}

function isToken(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function toCredentials(payload: unknown): AuthCredentials | undefined {
  if (isToken(payload)) return { token: payload };
  if (!isPlainObject(payload)) return undefined;
  const { ticket, token } = payload;
  if ((ticket !== undefined && !isToken(ticket)) || (token !== undefined && !isToken(token))) return undefined;
  if (ticket === undefined && token === undefined) return undefined;
  return { ticket, token };
}
