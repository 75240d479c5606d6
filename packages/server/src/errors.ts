import { AuthSocketError, CloseCode, type ErrorCode, ProtocolError } from '@authsocket/protocol';

export { AuthSocketError };

/** Every stable `code` an authsocket server error carries; branch on it, not on messages. */
export type AuthSocketErrorCode =
  | 'ERR_PROTOCOL'
  | 'ERR_TOKEN_INVALID'
  | 'ERR_TICKET_INVALID'
  | 'ERR_REVOKED'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_KEYS_UNAVAILABLE'
  | 'ERR_OUTCOME_UNKNOWN'
  | 'ERR_INVALID_OPTION'
  | 'ERR_HANDLER';

/** Why a token was refused; stable values for logs and metrics. Never carries the token itself. */
export type TokenFailureReason =
  | 'malformed'
  | 'expired'
  | 'not_yet_valid'
  | 'signature'
  | 'algorithm'
  | 'claims'
  /** A subscription token (it carries `subscriptionTokenClaim`) offered where a connection token is expected. */
  | 'subscription_token'
  /** The JWKS, fetched afresh, holds no key for the token's `kid` / `alg`. */
  | 'unknown_key';

/** A JWT that failed verification. The message is deliberately vague; `reason` is for logs. */
export class TokenError extends AuthSocketError {
  declare readonly code: 'ERR_TOKEN_INVALID';
  readonly reason: TokenFailureReason;

  constructor(reason: TokenFailureReason, options?: { cause?: unknown }) {
    super('ERR_TOKEN_INVALID', 'invalid token', options);
    this.reason = reason;
  }
}

/** Missing, unknown, expired, used or revoked ticket: one message for all, so probing learns nothing. */
export class TicketError extends AuthSocketError {
  declare readonly code: 'ERR_TICKET_INVALID';

  constructor() {
    super('ERR_TICKET_INVALID', 'invalid ticket');
  }
}

/** The user was revoked after this credential was issued. */
export class RevokedError extends AuthSocketError {
  declare readonly code: 'ERR_REVOKED';

  constructor() {
    super('ERR_REVOKED', 'revoked');
  }
}

/** A store (tickets, revocations, broker) could not be reached: callers fail closed; safe to retry. */
export class StoreUnavailableError extends AuthSocketError {
  declare readonly code: 'ERR_STORE_UNAVAILABLE';

  constructor(options?: { cause?: unknown }) {
    super('ERR_STORE_UNAVAILABLE', 'store unavailable', options);
  }
}

/**
 * The signing keys could not be had: the JWKS endpoint refused, timed out or answered something
 * that is not a key set, and no cached keys are usable (past `jwksStaleIfErrorMs`). Says nothing
 * about the token: callers fail closed but answer "retry later" (503 / `1011`), never "invalid
 * token", so a client does not log a valid user out during an IdP outage. `reason` is
 * `keys_unavailable`; `url` names the JWKS endpoint (origin and path only), for the logs.
 */
export class KeysUnavailableError extends AuthSocketError {
  declare readonly code: 'ERR_KEYS_UNAVAILABLE';
  readonly reason = 'keys_unavailable';
  readonly url: string;

  constructor(url: string, options?: { cause?: unknown }) {
    super('ERR_KEYS_UNAVAILABLE', 'signing keys unavailable', options);
    this.url = url;
  }
}

/**
 * A publication was sent to the broker but its outcome is unknown (no reply in time, or the link
 * dropped after sending): it may or may not have been published. Retrying is safe only with the
 * same idempotency key; without one, a retry can publish it twice.
 */
export class OutcomeUnknownError extends AuthSocketError {
  declare readonly code: 'ERR_OUTCOME_UNKNOWN';

  constructor(options?: { cause?: unknown }) {
    super('ERR_OUTCOME_UNKNOWN', 'publish outcome unknown', options);
  }
}

/** Invalid or conflicting gateway options; thrown by `createGateway` before anything starts. */
export class ConfigError extends AuthSocketError {
  declare readonly code: 'ERR_INVALID_OPTION';
  /** The option at fault, e.g. `jwt.secret`. */
  readonly option: string;

  constructor(option: string, message: string) {
    super('ERR_INVALID_OPTION', `invalid option '${option}': ${message}`);
    this.option = option;
  }
}

/**
 * A handler's (the application's, or its backend's) answer "no" or "not now", and what the client is
 * told: an `error` frame with `errorCode` for a request, or, from `onConnect`, a close with
 * `closeCode` (default `4403` for a refusal, `1013` try-again-later for `unavailable`).
 */
export class HandlerError extends AuthSocketError {
  declare readonly code: 'ERR_HANDLER';
  readonly errorCode: ErrorCode;
  /** The same request may succeed later: the client should retry it (`unavailable`). */
  readonly temporary: boolean;
  /** What the application adds for the client (`error.data`). */
  readonly data: unknown;
  readonly closeCode: number;

  constructor(
    errorCode: ErrorCode,
    message: string,
    options: { temporary?: boolean; data?: unknown; closeCode?: number; cause?: unknown } = {},
  ) {
    super('ERR_HANDLER', message, options.cause === undefined ? undefined : { cause: options.cause });
    this.errorCode = errorCode;
    this.temporary = options.temporary ?? errorCode === 'unavailable';
    this.data = options.data;
    this.closeCode = options.closeCode ?? (errorCode === 'unavailable' ? CloseCode.TryAgainLater : CloseCode.Forbidden);
  }
}

/** What an error means at each edge: one table instead of one mapping per edge. */
export interface ErrorClass {
  /**
   * Stable reason for logs, metrics and `authFailed` events, also the `code` of an HTTP error
   * body: a token failure's own reason, `revoked`, `ticket_invalid`, `protocol`, `unavailable`,
   * `keys_unavailable`, `outcome_unknown`, `invalid_option`, or `unknown` for anything else.
   */
  readonly reason: string;
  /** The close code a connection gets for it. */
  readonly closeCode: CloseCode;
  /** The text the peer may see (close reason, HTTP error body): never internal detail. */
  readonly message: string;
  /** The status an HTTP edge answers it with. */
  readonly httpStatus: number;
}

function answer(reason: string, closeCode: CloseCode, message: string, httpStatus: number): ErrorClass {
  return { reason, closeCode, message, httpStatus };
}

const STORE_UNAVAILABLE = answer('unavailable', CloseCode.InternalError, 'service unavailable', 503);
/** Like a store outage: retryable, so 503 before the upgrade and `1011` (client: back off) after it. */
const KEYS_UNAVAILABLE = answer('keys_unavailable', CloseCode.InternalError, 'service unavailable', 503);
const OUTCOME_UNKNOWN = answer('outcome_unknown', CloseCode.InternalError, 'publish outcome unknown', 504);
const REVOKED = answer('revoked', CloseCode.Forbidden, 'revoked', 401);
const TICKET_INVALID = answer('ticket_invalid', CloseCode.Unauthorized, 'invalid ticket', 401);
const INVALID_OPTION = answer('invalid_option', CloseCode.InternalError, 'internal error', 500);
const UNKNOWN = answer('unknown', CloseCode.InternalError, 'internal error', 500);

/** How every edge (upgrade, ticket endpoint, socket, HTTP API) answers `error`. */
export function classify(error: unknown): ErrorClass {
  if (error instanceof TokenError) return answer(error.reason, CloseCode.Unauthorized, 'invalid token', 401);
  if (error instanceof RevokedError) return REVOKED;
  if (error instanceof StoreUnavailableError) return STORE_UNAVAILABLE;
  if (error instanceof KeysUnavailableError) return KEYS_UNAVAILABLE;
  if (error instanceof OutcomeUnknownError) return OUTCOME_UNKNOWN;
  if (error instanceof TicketError) return TICKET_INVALID;
  if (error instanceof ProtocolError) return answer('protocol', error.closeCode, error.message, 400);
  if (error instanceof ConfigError) return INVALID_OPTION;
  return UNKNOWN;
}
