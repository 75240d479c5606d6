import type { ConnectionState } from '@authsocket/client';
import { type ActionTypeNames, resolveActionTypes } from './action-types.js';
import { createActions, type SerializedError } from './actions.js';

/** What the optional reducer keeps: the connection as the lifecycle actions describe it. */
export interface AuthSocketState {
  readonly status: ConnectionState;
  /** The authenticated user, while there is one. */
  readonly user: string | null;
  /** Token expiry as the server sees it (ms since the epoch), while authenticated. */
  readonly expiresAt: number | null;
  /** Code and reason of the last socket close. */
  readonly lastClose: { readonly code: number; readonly reason: string } | null;
  readonly lastError: SerializedError | null;
}

export const initialAuthSocketState: AuthSocketState = Object.freeze({
  status: 'idle',
  user: null,
  expiresAt: null,
  lastClose: null,
  lastError: null,
});

export type AuthSocketReducer = (state: AuthSocketState | undefined, action: { readonly type: string }) => AuthSocketState;

/**
 * A reducer over the lifecycle actions, for the same `actionTypes` as the middleware (the factory's
 * result has one ready as `reducer`).
 */
export function createAuthSocketReducer(actionTypes?: Partial<ActionTypeNames>): AuthSocketReducer {
  const actions = createActions(resolveActionTypes(actionTypes));
  return (state = initialAuthSocketState, action) => {
    if (actions.stateChanged.match(action)) {
      const { newState } = action.payload;
      const signedOut = newState !== 'open' && newState !== 'reauthenticating';
      return { ...state, status: newState, ...(signedOut ? { user: null, expiresAt: null } : {}) };
    }
    if (actions.authenticated.match(action)) {
      return { ...state, user: action.payload.user, expiresAt: action.payload.expiresAt };
    }
    if (actions.closed.match(action)) {
      return { ...state, lastClose: { code: action.payload.code, reason: action.payload.reason } };
    }
    if (actions.error.match(action)) {
      return { ...state, lastError: action.payload };
    }
    return state;
  };
}
