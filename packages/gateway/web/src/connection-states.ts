import type { ConnectionState } from '@authsocket/client';

export type StateTone = 'muted' | 'pending' | 'ok' | 'info' | 'warn' | 'bad';

export interface StateView {
  readonly label: string;
  readonly tone: StateTone;
  readonly detail: string;
}

/** How each state of the client reads in the UI. */
export const STATE_VIEWS: Readonly<Record<ConnectionState, StateView>> = {
  idle: { label: 'Not connected', tone: 'muted', detail: 'No socket at all: nothing can reach this page until you sign in.' },
  connecting: { label: 'Connecting', tone: 'pending', detail: 'Opening the WebSocket.' },
  authenticating: { label: 'Authenticating', tone: 'pending', detail: 'Socket open, auth sent: nothing is delivered before auth_ok.' },
  open: { label: 'Live', tone: 'ok', detail: 'Authenticated: messages flow both ways.' },
  // A routine refresh is not an interruption: it reads as live, with the state name beside it.
  reauthenticating: { label: 'Live', tone: 'ok', detail: 'Refreshing the token in band: the socket stays open, nothing is lost.' },
  reconnecting: { label: 'Reconnecting', tone: 'pending', detail: 'The socket closed; retrying with backoff, then resuming from history.' },
  unauthenticated: { label: 'Signed out', tone: 'muted', detail: 'The socket is unbound: the gateway delivers nothing to it.' },
  closed: { label: 'Closed', tone: 'bad', detail: 'The connection stopped for good.' },
};

/** While the gateway holds deliveries for a reauth, that says more than `reauthenticating`. */
export const HELD_VIEW: StateView = {
  label: 'Token expired · holding',
  tone: 'warn',
  detail: 'The gateway holds your messages until a fresh token arrives, then delivers them in order.',
};
