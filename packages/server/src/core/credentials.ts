import {
  ProtocolError,
  RESUME_PROTOCOL_PREFIX,
  type StreamPosition,
  SUBPROTOCOL,
  TICKET_PROTOCOL_PREFIX,
  TICKET_QUERY_PARAM,
  TOKEN_PROTOCOL_PREFIX,
  TOKEN_QUERY_PARAM,
  validateResume,
} from '@authsocket/protocol';
import type { UpgradeRequest } from './ports.js';

/** Credentials offered with an upgrade request. */
export interface UpgradeCredentials {
  readonly ticket: string | undefined;
  readonly token: string | undefined;
  /** Stream positions to resume from, for sockets authenticated at the upgrade. */
  readonly resume: Record<string, StreamPosition> | undefined;
}

/**
 * Reads the ticket and handshake token from `Sec-WebSocket-Protocol` (preferred: stays out of
 * URLs and access logs) or the query string. Returns a short problem description when the request
 * is malformed: no `authsocket.v1`, or a credential given twice. `url` is undefined when the
 * request has no query string. `acceptNone`: a request offering no subprotocol at all is taken as
 * `authsocket.v1` (clients that cannot set one).
 */
export function readCredentials(req: UpgradeRequest, url: URL | undefined, acceptNone = false): UpgradeCredentials | string {
  const header = req.header('sec-websocket-protocol');
  let offered = acceptNone && header === undefined;
  const found: { ticket: string[]; token: string[]; resume: string[] } = { ticket: [], token: [], resume: [] };
  for (const raw of (header ?? '').split(',')) {
    const entry = raw.trim();
    if (entry === SUBPROTOCOL) offered = true;
    else if (entry.startsWith(TICKET_PROTOCOL_PREFIX)) found.ticket.push(entry.slice(TICKET_PROTOCOL_PREFIX.length));
    else if (entry.startsWith(TOKEN_PROTOCOL_PREFIX)) found.token.push(entry.slice(TOKEN_PROTOCOL_PREFIX.length));
    else if (entry.startsWith(RESUME_PROTOCOL_PREFIX)) found.resume.push(entry.slice(RESUME_PROTOCOL_PREFIX.length));
  }
  if (!offered) return `subprotocol '${SUBPROTOCOL}' not offered`;
  if (url) {
    found.ticket.push(...url.searchParams.getAll(TICKET_QUERY_PARAM));
    found.token.push(...url.searchParams.getAll(TOKEN_QUERY_PARAM));
  }
  if (found.ticket.length > 1) return 'more than one ticket';
  if (found.token.length > 1) return 'more than one token';
  if (found.resume.length > 1) return 'more than one resume entry';
  if (found.ticket[0] === '' || found.token[0] === '') return 'empty credential';
  let resume: Record<string, StreamPosition> | undefined;
  if (found.resume[0] !== undefined) {
    try {
      resume = validateResume(JSON.parse(Buffer.from(found.resume[0], 'base64url').toString()));
    } catch (error) {
      return error instanceof ProtocolError ? error.message : 'resume is not base64url JSON';
    }
  }
  return { ticket: found.ticket[0], token: found.token[0], resume };
}
