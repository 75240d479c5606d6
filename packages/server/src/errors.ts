import { AuthSocketError } from '@authsocket/protocol';

export { AuthSocketError };

/** Why a token was refused; stable values for logs and metrics. Never carries the token itself. */
export type TokenFailureReason =
  | 'malformed'
  | 'expired'
  | 'not_yet_valid'
  | 'signature'
  | 'algorithm'
  | 'claims'
  | 'keys_unavailable';

/** A JWT that failed verification. The message is deliberately vague; `reason` is for logs. */
export class TokenError extends AuthSocketError {
  readonly reason: TokenFailureReason;

  constructor(reason: TokenFailureReason, options?: { cause?: unknown }) {
    super('ERR_TOKEN_INVALID', 'invalid token', options);
    this.reason = reason;
  }
}

/** Missing, unknown, expired, used or revoked ticket: one message for all, so probing learns nothing. */
export class TicketError extends AuthSocketError {
  constructor() {
    super('ERR_TICKET_INVALID', 'invalid ticket');
  }
}

/** A store (tickets, revocations) could not be reached: callers fail closed. */
export class StoreUnavailableError extends AuthSocketError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_STORE_UNAVAILABLE', 'store unavailable', options);
  }
}

/**
 * A publication was sent to the broker but its outcome is unknown (no reply in time, or the link
 * dropped after sending): it may or may not have been published. Retrying is safe only with the
 * same idempotency key; without one, a retry can publish it twice.
 */
export class OutcomeUnknownError extends AuthSocketError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_OUTCOME_UNKNOWN', 'publish outcome unknown', options);
  }
}

/** Invalid or conflicting gateway options; thrown by `createGateway` before anything starts. */
export class ConfigError extends AuthSocketError {
  /** The option at fault, e.g. `jwt.secret`. */
  readonly option: string;

  constructor(option: string, message: string) {
    super('ERR_INVALID_OPTION', `invalid option '${option}': ${message}`);
    this.option = option;
  }
}
