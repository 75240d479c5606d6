import type { AuthCredentials, AuthenticatedEvent, CloseEvent, ReauthRequiredEvent, StateChange } from '@authsocket/client';
import { isPlainObject } from '@authsocket/protocol';
import type { ActionTypeNames } from './action-types.js';

// Action shapes are type aliases, not interfaces: only aliases are assignable to Redux's `UnknownAction`.

/** The marker that sends an action over the socket. */
export interface WebSocketMeta {
  readonly websocket: true;
}

/** Any action carrying `meta.websocket: true`: sent as a protocol `message` without its `meta`. */
export type WebSocketAction<T extends string = string> = {
  readonly type: T;
  readonly payload?: unknown;
  readonly meta: WebSocketMeta & { readonly [key: string]: unknown };
};

export type LoggedInAction<T extends string = string> = {
  readonly type: T;
  readonly payload: { readonly token: string };
};

export type LogoutAction<T extends string = string> = {
  readonly type: T;
};

/** `payload`: the JWT, or `{ticket?, token?}` as `AuthSocket.setAuth()` takes. */
export type WebSocketAuthAction<T extends string = string> = {
  readonly type: T;
  readonly payload: string | AuthCredentials;
  readonly meta: WebSocketMeta;
};

export type WebSocketLogoutAction<T extends string = string> = {
  readonly type: T;
  readonly meta: WebSocketMeta;
};

export type ConnectAction<T extends string = string> = {
  readonly type: T;
};

export type DisconnectAction<T extends string = string> = {
  readonly type: T;
};

export type OpenAction<T extends string = string> = {
  readonly type: T;
};

export type AuthenticatedAction<T extends string = string> = {
  readonly type: T;
  readonly payload: AuthenticatedEvent;
};

export type ReauthRequiredAction<T extends string = string> = {
  readonly type: T;
  readonly payload: ReauthRequiredEvent;
};

export type LoggedOutAction<T extends string = string> = {
  readonly type: T;
};

export type ClosedAction<T extends string = string> = {
  readonly type: T;
  readonly payload: CloseEvent;
};

/** An error as plain data, so the action stays serializable. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  /** The stable `code` of an `AuthSocketError` (`ERR_UNAUTHORIZED`, `ERR_QUEUE_FULL`, ...). */
  readonly code?: string;
}

export type ErrorAction<T extends string = string> = {
  readonly type: T;
  readonly payload: SerializedError;
  readonly error: true;
};

export type StateChangedAction<T extends string = string> = {
  readonly type: T;
  readonly payload: StateChange;
};

/** `meta` of an action that came from the server. */
export interface ServerActionMeta {
  readonly fromServer: true;
  /** The topic it was published on, for topic messages. */
  readonly topic?: string;
  readonly [key: string]: unknown;
}

/** A server `message` whose `data` was an action, as dispatched into the store. */
export interface ServerAction<T extends string = string> {
  readonly type: T;
  readonly payload?: unknown;
  readonly meta: ServerActionMeta;
  readonly [key: string]: unknown;
}

/** An action creator: call it for an action; `type` is its type, `match()` a type guard for it. */
export interface ActionCreator<A extends { readonly type: string }, Args extends readonly unknown[] = []> {
  (...args: Args): A;
  readonly type: A['type'];
  match(action: unknown): action is A;
}

/** The typed action creators of one middleware, for its (possibly renamed) action types. */
export interface AuthSocketActions<N extends ActionTypeNames = ActionTypeNames> {
  readonly loggedIn: ActionCreator<LoggedInAction<N['loggedIn']>, [payload: { readonly token: string }]>;
  readonly logout: ActionCreator<LogoutAction<N['logout']>>;
  readonly websocketAuth: ActionCreator<WebSocketAuthAction<N['websocketAuth']>, [credentials: string | AuthCredentials]>;
  readonly websocketLogout: ActionCreator<WebSocketLogoutAction<N['websocketLogout']>>;
  readonly connect: ActionCreator<ConnectAction<N['connect']>>;
  readonly disconnect: ActionCreator<DisconnectAction<N['disconnect']>>;
  readonly open: ActionCreator<OpenAction<N['open']>>;
  readonly authenticated: ActionCreator<AuthenticatedAction<N['authenticated']>, [event: AuthenticatedEvent]>;
  readonly reauthRequired: ActionCreator<ReauthRequiredAction<N['reauthRequired']>, [event: ReauthRequiredEvent]>;
  readonly loggedOut: ActionCreator<LoggedOutAction<N['loggedOut']>>;
  readonly closed: ActionCreator<ClosedAction<N['closed']>, [event: CloseEvent]>;
  readonly error: ActionCreator<ErrorAction<N['error']>, [error: unknown]>;
  readonly stateChanged: ActionCreator<StateChangedAction<N['stateChanged']>, [change: StateChange]>;
}

/** Every action a middleware dispatches into the store on its own (for reducers' action unions). */
export type AuthSocketLifecycleAction<N extends ActionTypeNames = ActionTypeNames> =
  | OpenAction<N['open']>
  | AuthenticatedAction<N['authenticated']>
  | ReauthRequiredAction<N['reauthRequired']>
  | LoggedOutAction<N['loggedOut']>
  | ClosedAction<N['closed']>
  | ErrorAction<N['error']>
  | StateChangedAction<N['stateChanged']>;

/** True for an object with a string `type`: what Redux accepts as an action. */
export function isAction(value: unknown): value is { readonly type: string } {
  return isPlainObject(value) && typeof value.type === 'string';
}

/** True for an action with `meta.websocket === true`. */
export function isWebSocketAction(action: unknown): action is WebSocketAction {
  return isAction(action) && isPlainObject((action as { meta?: unknown }).meta) && (action as WebSocketAction).meta.websocket === true;
}

/** True for an action the middleware dispatched from a server message (`meta.fromServer === true`). */
export function isServerAction(action: unknown): action is ServerAction {
  return isAction(action) && isPlainObject((action as { meta?: unknown }).meta) && (action as ServerAction).meta.fromServer === true;
}

/** Plain data for an error: `name`, `message` and, for `AuthSocketError`s, `code`. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? { name: error.name, message: error.message, code } : { name: error.name, message: error.message };
  }
  return { name: 'Error', message: `non-error thrown: ${String(error).slice(0, 64)}` };
}

function creator<T extends string, B extends object, Args extends readonly unknown[]>(
  type: T,
  build: (...args: Args) => B,
): ActionCreator<{ readonly type: T } & B, Args> {
  const create = (...args: Args): { readonly type: T } & B => ({ type, ...build(...args) });
  const match = (action: unknown): action is { readonly type: T } & B => isAction(action) && action.type === type;
  return Object.assign(create, { type, match }) as ActionCreator<{ readonly type: T } & B, Args>;
}

const WEBSOCKET: WebSocketMeta = Object.freeze({ websocket: true as const });

/** The action creators for `types`. */
export function createActions<N extends ActionTypeNames>(types: N): AuthSocketActions<N> {
  const actions: AuthSocketActions<N> = {
    loggedIn: creator(types.loggedIn, (payload: { readonly token: string }) => ({ payload: { token: payload.token } })),
    logout: creator(types.logout, () => ({})),
    websocketAuth: creator(types.websocketAuth, (credentials: string | AuthCredentials) => ({ payload: credentials, meta: WEBSOCKET })),
    websocketLogout: creator(types.websocketLogout, () => ({ meta: WEBSOCKET })),
    connect: creator(types.connect, () => ({})),
    disconnect: creator(types.disconnect, () => ({})),
    open: creator(types.open, () => ({})),
    authenticated: creator(types.authenticated, (event: AuthenticatedEvent) => ({
      // `streams` carries `recovered: false` when history could not cover a resume: the app re-syncs.
      payload: {
        user: event.user,
        expiresAt: event.expiresAt,
        reauth: event.reauth,
        ...(event.streams ? { streams: event.streams } : {}),
      },
    })),
    reauthRequired: creator(types.reauthRequired, (event: ReauthRequiredEvent) => ({
      payload: { deadline: event.deadline, reason: event.reason },
    })),
    loggedOut: creator(types.loggedOut, () => ({})),
    closed: creator(types.closed, (event: CloseEvent) => ({
      payload: { code: event.code, reason: event.reason, action: event.action },
    })),
    error: creator(types.error, (error: unknown) => ({ payload: serializeError(error), error: true as const })),
    stateChanged: creator(types.stateChanged, (change: StateChange) => ({ payload: { ...change } })),
  };
  return Object.freeze(actions);
}
