import { TICKET_PATH } from '@authsocket/protocol';
import { TicketRequestError, UnauthorizedError } from './errors.js';

const HTTP_UNAUTHORIZED = 401;

/** What `POST /auth/ticket` returns. */
export interface Ticket {
  readonly ticket: string;
  /** ms since the epoch: the ticket is refused after this. */
  readonly expiresAt: number;
}

export interface FetchTicketOptions {
  /** `fetch` to use; default `globalThis.fetch`. */
  readonly fetch?: typeof globalThis.fetch;
}

/**
 * Exchanges the application's JWT for a single-use connection ticket at `POST /auth/ticket` of
 * `baseUrl` (an `http(s)://` or `ws(s)://` origin). A `401` throws `UnauthorizedError` (the client
 * stops); anything else non-200 throws `TicketRequestError` (the client retries with backoff).
 *
 * ```ts
 * getTicket: async () => (await fetchTicket('https://example.com', await session.jwt())).ticket
 * ```
 */
export async function fetchTicket(baseUrl: string, token: string, options: FetchTicketOptions = {}): Promise<Ticket> {
  const url = new URL(TICKET_PATH, baseUrl);
  if (url.protocol === 'ws:') url.protocol = 'http:';
  if (url.protocol === 'wss:') url.protocol = 'https:';
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const response = await fetchImpl(url, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  if (response.status === HTTP_UNAUTHORIZED) throw new UnauthorizedError('ticket request refused');
  if (!response.ok) throw new TicketRequestError(response.status);
  const body: unknown = await response.json().catch(() => undefined);
  if (!isTicket(body)) throw new TicketRequestError(response.status);
  return { ticket: body.ticket, expiresAt: body.expiresAt };
}

function isTicket(value: unknown): value is Ticket {
  if (typeof value !== 'object' || value === null) return false;
  const { ticket, expiresAt } = value as Record<string, unknown>;
  return typeof ticket === 'string' && ticket.length > 0 && typeof expiresAt === 'number';
}
