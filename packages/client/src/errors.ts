import { AuthSocketError, type ErrorCode, type UnsubscribeReason } from '@authsocket/protocol';

export { AuthSocketError };

/**
 * Credentials were refused and cannot be refreshed. Throw it from `getToken()` / `getTicket()` to say
 * "this user is logged out, stop": the client goes to `unauthenticated` instead of retrying. Any other
 * error thrown by them is taken as temporary and retried with backoff.
 */
export class UnauthorizedError extends AuthSocketError {
  constructor(message = 'unauthorized', options?: { cause?: unknown }) {
    super('ERR_UNAUTHORIZED', message, options);
  }
}

/** The outbound queue holds `limit` frames already; nothing was added. */
export class QueueFullError extends AuthSocketError {
  readonly limit: number;

  constructor(limit: number) {
    super('ERR_QUEUE_FULL', `outbound queue is full (${limit} frames)`);
    this.limit = limit;
  }
}

/** The request was dropped before the server confirmed it: `close()`, `logout()` or `unsubscribe()`. */
export class CancelledError extends AuthSocketError {
  constructor(message: string) {
    super('ERR_CANCELLED', message);
  }
}

/**
 * The socket closed while a request waited for its `ack`: the server may or may not have handled it.
 * It is not re-sent on its own, so an application never gets a duplicate it did not ask for.
 */
export class ConnectionLostError extends AuthSocketError {
  readonly closeCode: number;

  constructor(closeCode: number) {
    super('ERR_CONNECTION_LOST', `connection closed (${closeCode}) before the server acknowledged`);
    this.closeCode = closeCode;
  }
}

/** The server answered a request with an `error` frame (`forbidden`, `rejected`, `rate_limited`). */
export class RequestRefusedError extends AuthSocketError {
  /** The `code` of the server's `error` frame. */
  readonly reason: ErrorCode;
  /** With `rate_limited`: the server's hint, in ms, of how long to wait. */
  readonly retryAfter: number | undefined;
  /** True when the same request may succeed later (`unavailable`): retry it. */
  readonly temporary: boolean;
  /** What the application added to its refusal. */
  readonly data: unknown;

  constructor(reason: ErrorCode, message: string, retryAfter?: number, extra: { readonly temporary?: boolean; readonly data?: unknown } = {}) {
    super('ERR_REQUEST_REFUSED', message === '' ? reason : message);
    this.reason = reason;
    this.retryAfter = retryAfter;
    this.temporary = extra.temporary === true;
    this.data = extra.data;
  }
}

/** `POST /auth/ticket` answered with something other than 200 (401 becomes `UnauthorizedError`). */
export class TicketRequestError extends AuthSocketError {
  readonly status: number;

  constructor(status: number) {
    super('ERR_TICKET_REQUEST', `ticket request failed with HTTP ${status}`);
    this.status = status;
  }
}

/**
 * The server ended a subscription (`unsubscribed`): `forbidden` (a reauth's claims no longer allow
 * the topic) or `expired` (its subscription token's `exp` passed). The topic is not joined again on
 * its own: subscribe again (with a fresh token) if the application still wants it.
 */
export class SubscriptionEndedError extends AuthSocketError {
  readonly reason: UnsubscribeReason;

  constructor(reason: UnsubscribeReason, message: string) {
    super('ERR_SUBSCRIPTION_ENDED', message === '' ? reason : message);
    this.reason = reason;
  }
}
