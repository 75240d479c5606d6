/**
 * Where a client is:
 * - `idle`: created, `connect()` not called yet;
 * - `connecting`: getting credentials and opening a socket;
 * - `authenticating`: the socket is open, waiting for `auth_ok`;
 * - `open`: authenticated; frames flow;
 * - `reauthenticating`: authenticated, a fresh token is on its way in band (no disconnect);
 * - `reconnecting`: the socket closed; waiting before the next attempt;
 * - `unauthenticated`: credentials refused (or `logout()`); nothing happens until `setAuth()`/`connect()`;
 * - `closed`: stopped by `close()` or by a close code whose action is `stop`.
 */
export type ConnectionState =
  | 'idle'
  | 'connecting'
  | 'authenticating'
  | 'open'
  | 'reauthenticating'
  | 'reconnecting'
  | 'unauthenticated'
  | 'closed';

/** Payload of the `state` event: one per transition. */
export interface StateChange {
  readonly oldState: ConnectionState;
  readonly newState: ConnectionState;
  /** The close code that caused the transition, when there was one. */
  readonly code?: number;
  readonly reason?: string;
}

/** Every allowed transition; anything else is a bug in the client and throws. */
export const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = Object.freeze({
  idle: ['connecting', 'unauthenticated', 'closed'],
  connecting: ['authenticating', 'reconnecting', 'unauthenticated', 'closed'],
  authenticating: ['open', 'reconnecting', 'unauthenticated', 'closed'],
  open: ['reauthenticating', 'reconnecting', 'unauthenticated', 'closed'],
  reauthenticating: ['open', 'reconnecting', 'unauthenticated', 'closed'],
  reconnecting: ['connecting', 'unauthenticated', 'closed'],
  unauthenticated: ['connecting', 'authenticating', 'closed'],
  closed: ['connecting'],
});

export function canTransition(from: ConnectionState, to: ConnectionState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** States in which the socket is authenticated. */
export function isAuthenticated(state: ConnectionState): boolean {
  return state === 'open' || state === 'reauthenticating';
}
