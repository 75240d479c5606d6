import type { CloseAction, ReauthReason, StreamState } from '@authsocket/protocol';
import type { StateChange } from './state.js';

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
