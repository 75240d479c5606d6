import { CloseCode, MessageType } from '@authsocket/protocol';
import type { DeadlineQueue } from '../deadlines.js';
import type { EventSink } from '../events.js';
import type { ResolvedOptions } from '../options.js';
import type { Core } from './context.js';
import { reportRefusal } from './refusals.js';
import type { Session } from './session.js';

/**
 * Each session's one deadline (auth timeout, expiry warning, expiry, reauth grace) and the expiry
 * policy. The deadline callbacks are made once and given the session, so scheduling allocates no
 * closure.
 */
export class Expiry {
  readonly #options: ResolvedOptions;
  readonly #deadlines: DeadlineQueue;
  readonly #events: EventSink;

  constructor(core: Core) {
    this.#options = core.options;
    this.#deadlines = core.deadlines;
    this.#events = core.events;
  }

  /** An unauthenticated session gets `authTimeoutMs` to authenticate. */
  armAuthTimeout(session: Session): void {
    const at = this.#options.clock.now() + this.#options.authTimeoutMs;
    session.setDeadline(this.#deadlines.schedule(at, this.#authTimedOut, session));
  }

  /** Starts the policy for the session's (new) expiry. */
  schedule(session: Session): void {
    session.clearDeadline();
    const { expiryPolicy, reauthWindowMs, clock } = this.#options;
    const expiresAt = session.expiresAt as number;
    if (expiryPolicy === 'ignore') return;
    if (expiryPolicy === 'close' || reauthWindowMs === 0) {
      session.setDeadline(this.#deadlines.schedule(expiresAt, this.#expiryDue, session));
      return;
    }
    // A token born inside the window (shorter-lived than it) is warned halfway through its life,
    // not at once: a warning per fresh token would make clients refresh in a loop.
    const now = clock.now();
    const warnAt =
      expiresAt - reauthWindowMs > now ? expiresAt - reauthWindowMs : now + Math.floor((expiresAt - now) / 2);
    session.setDeadline(this.#deadlines.schedule(warnAt, this.#expiryNear, session));
  }

  /** The token of an authenticated session has run out: apply the policy. */
  expire(session: Session): void {
    if (session.state !== 'authenticated') return;
    const { expiryPolicy, reauthGraceMs, clock } = this.#options;
    this.#events.emit('expired', { connection: session, policy: expiryPolicy });
    if (expiryPolicy === 'close') return session.close(CloseCode.TokenExpired, 'token expired');
    session.hold(clock.now());
    const deadline = (session.expiresAt as number) + reauthGraceMs;
    session.writeFrame({ type: MessageType.ReauthRequired, deadline, reason: 'expired' });
    session.setDeadline(this.#deadlines.schedule(deadline, this.#reauthGraceOver, session));
  }

  readonly #authTimedOut = (session: Session): void => {
    if (session.state !== 'pending') return;
    reportRefusal(this.#events, this.#options.logger, { stage: 'auth', reason: 'timeout', address: session.remoteAddress, connection: session.id });
    session.close(CloseCode.AuthTimeout, 'authentication timed out');
  };

  readonly #expiryNear = (session: Session): void => {
    const expiresAt = session.expiresAt as number;
    session.writeFrame({ type: MessageType.ReauthRequired, deadline: expiresAt, reason: 'expiring' });
    session.setDeadline(this.#deadlines.schedule(expiresAt, this.#expiryDue, session));
  };

  readonly #expiryDue = (session: Session): void => this.expire(session);

  readonly #reauthGraceOver = (session: Session): void => {
    if (session.state === 'held') session.close(CloseCode.TokenExpired, 'reauth deadline missed');
  };
}
