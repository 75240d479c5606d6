import { KeysUnavailableError } from '../errors.js';
import type { AuthStage, EventSink } from '../events.js';
import type { Logger } from '../logger.js';

/** One refused authentication, as it is reported: never the token or the ticket. */
export interface Refusal {
  readonly stage: AuthStage;
  /** The stable reason of `classify`, or the edge's own (`missing`, `user_mismatch`, `timeout`, ...). */
  readonly reason: string;
  /** The client's address, through the proxies `trustProxy` vouches for. */
  readonly address: string | undefined;
  /** The connection's id, once there is a socket. */
  readonly connection?: string | undefined;
  /** The user, only when a verified credential (an earlier token, a ticket) proved it. */
  readonly user?: string | undefined;
  /** What was refused, when it says more than the reason (e.g. a KeysUnavailableError). */
  readonly error?: unknown;
}

/** Reasons that are an outage on our side, not the client's credential: logged as errors. */
const OUTAGES: ReadonlySet<string> = new Set(['keys_unavailable', 'unavailable']);

/**
 * Reports a refusal once: the `authFailed` event (metrics) and one log line, at `info` for a
 * refused credential and `error` for an outage (with the JWKS URL when the keys were missing).
 */
export function reportRefusal(events: EventSink, logger: Logger, refusal: Refusal): void {
  const { stage, reason, address, connection, user, error } = refusal;
  events.emit('authFailed', { stage, reason });
  const fields: Record<string, unknown> = { stage, reason };
  if (address !== undefined) fields.address = address;
  if (connection !== undefined) fields.id = connection;
  if (user !== undefined) fields.user = user;
  if (error instanceof KeysUnavailableError) {
    fields.jwksUrl = error.url;
    if (error.cause !== undefined) fields.err = String(error.cause);
  }
  if (OUTAGES.has(reason)) logger.error(fields, 'authentication refused: service unavailable');
  else logger.info(fields, 'authentication refused');
}
