import {
  RESUME_PROTOCOL_PREFIX,
  type StreamPosition,
  SUBPROTOCOL,
  TICKET_PROTOCOL_PREFIX,
  TICKET_QUERY_PARAM,
  TOKEN_PROTOCOL_PREFIX,
  TOKEN_QUERY_PARAM,
} from '@authsocket/protocol';

/**
 * The part of a WebSocket the client uses: the browser's `WebSocket`, `ws`'s `WebSocket`, or anything
 * shaped like them. Listeners are added with `addEventListener` and never removed: a stale socket's
 * events are ignored instead, so an implementation that throws on an unheard `error` never does.
 */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server selected. */
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { readonly code: number; readonly reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` in Node. */
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

/** `readyState` of an open socket (the same value in every implementation). */
export const OPEN = 1;

/** Where the ticket and a handshake token travel. */
export type CredentialPlacement = 'protocol' | 'query';

export interface HandshakeCredentials {
  readonly ticket?: string;
  /** A JWT to present at the handshake (only when the server accepts handshake tokens). */
  readonly token?: string;
  /** Stream positions for a socket authenticated at the upgrade (one with an `auth` frame sends them there). */
  readonly resume?: Readonly<Record<string, StreamPosition>>;
}

export interface ConnectionTarget {
  readonly url: string;
  readonly protocols: string[];
}

/**
 * The URL and `Sec-WebSocket-Protocol` list of one connection attempt: always `authsocket.v1` first,
 * then `ticket.<t>` / `token.<jwt>` (or `?ticket=` / `?token=` when placed in the query), then
 * `resume.<base64url of JSON>`.
 */
export function connectionTarget(
  baseUrl: string,
  credentials: HandshakeCredentials,
  placement: { ticket: CredentialPlacement; token: CredentialPlacement },
): ConnectionTarget {
  const url = new URL(baseUrl);
  const protocols = [SUBPROTOCOL];
  if (credentials.ticket !== undefined) {
    if (placement.ticket === 'protocol') protocols.push(TICKET_PROTOCOL_PREFIX + credentials.ticket);
    else url.searchParams.set(TICKET_QUERY_PARAM, credentials.ticket);
  }
  if (credentials.token !== undefined) {
    if (placement.token === 'protocol') protocols.push(TOKEN_PROTOCOL_PREFIX + credentials.token);
    else url.searchParams.set(TOKEN_QUERY_PARAM, credentials.token);
  }
  if (credentials.resume !== undefined) protocols.push(RESUME_PROTOCOL_PREFIX + base64url(JSON.stringify(credentials.resume)));
  return { url: url.toString(), protocols };
}

/** The target of one attempt, and the token that goes in its first `auth` frame (none when presented at the handshake). */
export interface AttemptTarget extends ConnectionTarget {
  readonly inBandToken: string | undefined;
}

/**
 * Where the credentials of one attempt travel: the ticket per `ticketIn`; the token at the handshake
 * when `handshakeToken` says so, else in the first `auth` frame, which then also carries the resume
 * positions (otherwise they ride in the handshake).
 */
export function attemptTarget(
  baseUrl: string,
  credentials: { readonly ticket?: string; readonly token?: string },
  resume: Readonly<Record<string, StreamPosition>> | undefined,
  { ticketIn, handshakeToken }: { readonly ticketIn: CredentialPlacement; readonly handshakeToken: false | CredentialPlacement },
): AttemptTarget {
  const atHandshake = handshakeToken !== false;
  const inBandToken = atHandshake ? undefined : credentials.token;
  const target = connectionTarget(
    baseUrl,
    { ticket: credentials.ticket, token: atHandshake ? credentials.token : undefined, resume: inBandToken === undefined ? resume : undefined },
    { ticket: ticketIn, token: atHandshake ? handshakeToken : 'protocol' },
  );
  return { ...target, inBandToken };
}

/** base64url without padding, with what both browsers and Node have (no `Buffer`). */
export function base64url(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
