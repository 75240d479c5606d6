/**
 * The default type of every action the middleware watches, consumes or dispatches. Each one can be
 * renamed with the `actionTypes` option; the renamed literal types flow into the action creators.
 */
export const DEFAULT_ACTION_TYPES = Object.freeze({
  /** App action, watched: `{type, payload: {token}}` after an HTTP login. Reaches reducers; then `websocketAuth` follows. */
  loggedIn: 'LOGGED_IN',
  /** App action, watched: reaches reducers; then `websocketLogout` follows. */
  logout: 'LOGOUT',
  /** Control, consumed: `{payload: token | {ticket?, token?}, meta: {websocket: true}}` authenticates the socket. */
  websocketAuth: 'WEBSOCKET_AUTH',
  /** Control, consumed: `{meta: {websocket: true}}` logs the socket out (protocol `logout`). */
  websocketLogout: 'WEBSOCKET_LOGOUT',
  /** Control, consumed: starts connecting (`client.connect()`). */
  connect: 'WEBSOCKET_CONNECT',
  /** Control, consumed: closes the client for good (`client.close()`); `connect` starts it again. */
  disconnect: 'WEBSOCKET_DISCONNECT',
  /** Lifecycle, dispatched: a socket opened; authentication follows. */
  open: 'WEBSOCKET_OPEN',
  /** Lifecycle, dispatched: every `auth_ok`, `{payload: {user, expiresAt, reauth}}`. */
  authenticated: 'WEBSOCKET_AUTHENTICATED',
  /** Lifecycle, dispatched: the server asks for a fresh token, `{payload: {deadline, reason}}`. */
  reauthRequired: 'WEBSOCKET_REAUTH_REQUIRED',
  /** Lifecycle, dispatched: the server confirmed a logout (`logged_out`). */
  loggedOut: 'WEBSOCKET_LOGGED_OUT',
  /** Lifecycle, dispatched: a socket closed, `{payload: {code, reason, action}}`. */
  closed: 'WEBSOCKET_CLOSED',
  /** Lifecycle, dispatched: `{payload: {name, message, code?}, error: true}`. */
  error: 'WEBSOCKET_ERROR',
  /** Lifecycle, dispatched: every state transition, `{payload: {oldState, newState, code?, reason?}}`. */
  stateChanged: 'WEBSOCKET_STATE_CHANGED',
} as const);

export type DefaultActionTypes = typeof DEFAULT_ACTION_TYPES;
export type ActionKey = keyof DefaultActionTypes;

/** Every action type name, by role. */
export type ActionTypeNames = { readonly [K in ActionKey]: string };

/** The names after applying `actionTypes` overrides `T` to the defaults, keeping literal types. */
export type ResolvedActionTypes<T extends Partial<ActionTypeNames>> = {
  readonly [K in ActionKey]: K extends keyof T ? (T[K] extends string ? T[K] : DefaultActionTypes[K]) : DefaultActionTypes[K];
};

/** Applies the overrides and checks that every name is a non-empty string and no two roles share one. */
export function resolveActionTypes<T extends Partial<ActionTypeNames>>(overrides: T | undefined): ResolvedActionTypes<T> {
  if (overrides !== undefined && (typeof overrides !== 'object' || overrides === null)) {
    throw new TypeError(`option 'actionTypes' must be an object`);
  }
  const resolved: Record<string, string> = { ...DEFAULT_ACTION_TYPES };
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (!Object.hasOwn(DEFAULT_ACTION_TYPES, key)) throw new TypeError(`option 'actionTypes' has an unknown key '${key}'`);
    if (value === undefined) continue;
    if (typeof value !== 'string' || value === '') throw new TypeError(`option 'actionTypes.${key}' must be a non-empty string`);
    resolved[key] = value;
  }
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(resolved)) {
    const other = seen.get(value);
    if (other !== undefined) throw new TypeError(`options 'actionTypes.${other}' and 'actionTypes.${key}' conflict: both are '${value}'`);
    seen.set(value, key);
  }
  return Object.freeze(resolved) as ResolvedActionTypes<T>;
}
