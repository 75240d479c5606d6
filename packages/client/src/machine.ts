import { AuthSocketError, dropUndefined } from '@authsocket/protocol';
import { canTransition, type ConnectionState, type StateChange } from './state.js';

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

/** The close code and reason a transition carries, when it has them. */
export interface Change {
  readonly code?: number;
  readonly reason?: string;
}

export interface MachineHooks {
  /** The client landed in `closed` or `unauthenticated`; called before any listener hears of it. */
  ended(state: 'closed' | 'unauthenticated', change: Change): void;
  /** Every transition, after the snapshot listeners. */
  changed(change: StateChange): void;
  /** A snapshot listener threw. */
  listenerFailed(error: unknown): void;
}

/**
 * The connection state and its snapshot. `setState` is the only way to change the state: it refuses
 * any transition the `TRANSITIONS` table does not list, then tells the snapshot listeners and `changed`.
 */
export class Machine {
  readonly #hooks: MachineHooks;
  readonly #listeners = new Set<() => void>();
  #state: ConnectionState = 'idle';
  #snapshot: AuthSocketSnapshot = Object.freeze({ state: 'idle' as const });
  #user: string | undefined;
  #expiresAt: number | undefined;

  constructor(hooks: MachineHooks) {
    this.#hooks = hooks;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get snapshot(): AuthSocketSnapshot {
    return this.#snapshot;
  }

  /** Calls `listener` after every snapshot change; returns the function that stops it. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Moves to `newState` (nothing when already there); throws `ERR_INVALID_STATE` for a transition the table refuses. */
  setState(newState: ConnectionState, change: Change = {}): void {
    const oldState = this.#state;
    if (oldState === newState) return;
    if (!canTransition(oldState, newState)) {
      throw new AuthSocketError('ERR_INVALID_STATE', `invalid state transition ${oldState} -> ${newState}`);
    }
    this.#state = newState;
    if (newState === 'unauthenticated' || newState === 'closed') {
      this.#user = undefined;
      this.#expiresAt = undefined;
      this.#hooks.ended(newState, change);
    }
    this.#publish(change);
    this.#hooks.changed({ oldState, newState, ...dropUndefined(change) });
  }

  /** An `auth_ok`: records who is authenticated until when, and lands in `open`. */
  authenticated(user: string, expiresAt: number): void {
    this.#user = user;
    this.#expiresAt = expiresAt;
    if (this.#state === 'open') this.#publish({});
    else this.setState('open');
  }

  #publish(change: Change): void {
    this.#snapshot = Object.freeze(
      { state: this.#state, ...dropUndefined({ user: this.#user, expiresAt: this.#expiresAt, code: change.code, reason: change.reason }) },
    );
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (error) {
        this.#hooks.listenerFailed(error);
      }
    }
  }
}
