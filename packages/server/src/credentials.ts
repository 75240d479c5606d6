import type { IncomingMessage } from 'node:http';
import {
  SUBPROTOCOL,
  TICKET_PROTOCOL_PREFIX,
  TICKET_QUERY_PARAM,
  TOKEN_PROTOCOL_PREFIX,
  TOKEN_QUERY_PARAM,
} from '@authsocket/protocol';

/** Credentials offered with an upgrade request. */
export interface UpgradeCredentials {
  readonly ticket: string | undefined;
  readonly token: string | undefined;
}

/**
 * Reads the ticket and handshake token from `Sec-WebSocket-Protocol` (preferred: stays out of
 * URLs and access logs) or the query string. Returns a short problem description when the request
 * is malformed: no `authsocket.v1`, or a credential given twice.
 */
export function readCredentials(req: IncomingMessage, url: URL): UpgradeCredentials | string {
  const offered = (req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  if (!offered.includes(SUBPROTOCOL)) return `subprotocol '${SUBPROTOCOL}' not offered`;

  const found: { ticket: string[]; token: string[] } = { ticket: [], token: [] };
  for (const entry of offered) {
    if (entry.startsWith(TICKET_PROTOCOL_PREFIX)) found.ticket.push(entry.slice(TICKET_PROTOCOL_PREFIX.length));
    else if (entry.startsWith(TOKEN_PROTOCOL_PREFIX)) found.token.push(entry.slice(TOKEN_PROTOCOL_PREFIX.length));
  }
  found.ticket.push(...url.searchParams.getAll(TICKET_QUERY_PARAM));
  found.token.push(...url.searchParams.getAll(TOKEN_QUERY_PARAM));
  if (found.ticket.length > 1) return 'more than one ticket';
  if (found.token.length > 1) return 'more than one token';
  if (found.ticket[0] === '' || found.token[0] === '') return 'empty credential';
  return { ticket: found.ticket[0], token: found.token[0] };
}
