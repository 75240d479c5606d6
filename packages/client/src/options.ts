import { dropUndefined } from '@authsocket/protocol';
import type { Wait } from './backoff.js';
import { timerWait } from './backoff.js';
import type { CredentialPlacement, WebSocketConstructor } from './transport.js';

/** Credentials as one object: the `auth` option and the argument of `setAuth()`. */
export interface AuthCredentials {
  /** A connection ticket from `POST /auth/ticket`: single use, so only good for one connection. */
  readonly ticket?: string;
  /** A JWT, sent as the first `auth` frame (or at the handshake with `handshakeToken`). */
  readonly token?: string;
}

/** How `setAuth()` applies new credentials to a live connection. */
export type SetAuthStrategy = 'inband' | 'reconnect';

export interface AuthSocketOptions {
  /** `ws://` or `wss://` URL of the server's WebSocket endpoint. Required. */
  readonly url: string;
  /** Initial credentials as one object, the shape `setAuth()` takes. Exclusive with `ticket`/`token`. */
  readonly auth?: AuthCredentials;
  /** Shorthand for `auth: { ticket }`. */
  readonly ticket?: string;
  /** Shorthand for `auth: { token }`. */
  readonly token?: string;
  /**
   * Gets a fresh ticket; called for every connection attempt (tickets are single use), once at a time.
   * Throw `UnauthorizedError` to stop; any other error is retried with backoff. See `fetchTicket()`.
   */
  readonly getTicket?: () => Promise<string>;
  /**
   * Gets a fresh JWT: when there is none yet, on `reauth_required`, and after a 4401/4419 close.
   * Concurrent needs share one call. Throw `UnauthorizedError` to stop; other errors are retried.
   */
  readonly getToken?: () => Promise<string>;
  /**
   * Data sent as the first `message` after every authentication of a new connection (before queued
   * frames). A function is called each time for a fresh value. Default: none.
   */
  readonly initPayload?: unknown;
  /** Default strategy of `setAuth()`. Default `'inband'`. */
  readonly setAuthStrategy?: SetAuthStrategy;
  /** Where the ticket travels. Default `'protocol'` (`Sec-WebSocket-Protocol`), which keeps it out of URLs and logs. */
  readonly ticketIn?: CredentialPlacement;
  /**
   * Present the token at the handshake instead of in a first `auth` frame: `'protocol'`
   * (`token.<jwt>` subprotocol) or `'query'` (`?token=`). The server must enable `handshakeToken`.
   * Default `false`.
   */
  readonly handshakeToken?: false | CredentialPlacement;
  /** Put the current token in every `message` and `publish` (server `perMessageAuth`). Default `false`. */
  readonly perMessageToken?: boolean;
  /** WebSocket implementation. Default `globalThis.WebSocket`; in Node 20 pass `WebSocket` from `ws`. */
  readonly WebSocket?: WebSocketConstructor;
  /** Smallest reconnect delay, and the base of the exponential growth. Default 500 ms. */
  readonly minReconnectDelayMs?: number;
  /** Largest reconnect delay. Default 20 000 ms. */
  readonly maxReconnectDelayMs?: number;
  /**
   * Consecutive failed attempts after which the client gives up (state `closed`); reset by every
   * `auth_ok`. Default 30 (about ten minutes at the default delays).
   */
  readonly maxReconnectAttempts?: number;
  /** Frames `send()`/`publish()` may queue while not authenticated. Default 1000. */
  readonly maxQueueSize?: number;
  /** Reconnect when the browser fires `online` or the page becomes visible. Default `true`. */
  readonly reconnectOnBrowserEvents?: boolean;
  /** How to wait between attempts (tests pass one that does not sleep). Default: a cleared-on-close timer. */
  readonly wait?: Wait;
  /** Random source of the backoff jitter, in `[0, 1)`. Default `Math.random`. */
  readonly random?: () => number;
}

/** Every option with its default applied; credentials are folded into `auth`. */
export interface ResolvedOptions
  extends Required<Omit<AuthSocketOptions, 'auth' | 'ticket' | 'token' | 'getTicket' | 'getToken' | 'initPayload'>> {
  readonly auth: AuthCredentials;
  readonly getTicket: (() => Promise<string>) | undefined;
  readonly getToken: (() => Promise<string>) | undefined;
  readonly initPayload: unknown;
}

export const DEFAULTS = Object.freeze({
  setAuthStrategy: 'inband',
  ticketIn: 'protocol',
  handshakeToken: false,
  perMessageToken: false,
  minReconnectDelayMs: 500,
  maxReconnectDelayMs: 20_000,
  maxReconnectAttempts: 30,
  maxQueueSize: 1000,
  reconnectOnBrowserEvents: true,
  wait: timerWait,
  random: Math.random,
} as const satisfies Partial<AuthSocketOptions>);

function nonNegative(name: string, value: number, integer = false): void {
  const ok = integer ? Number.isInteger(value) || value === Infinity : Number.isFinite(value);
  if (!ok || value < 0) throw new TypeError(`option '${name}' must be a non-negative ${integer ? 'integer' : 'number'}, got ${value}`);
}

/** Applies the defaults and rejects invalid or conflicting options with a `TypeError` naming them. */
export function resolveOptions(options: AuthSocketOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError(`option 'url' must be a ws:// or wss:// URL`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new TypeError(`option 'url' must be a ws:// or wss:// URL`);
  if (options.auth !== undefined && (options.ticket !== undefined || options.token !== undefined)) {
    throw new TypeError(`options 'auth' and '${options.ticket !== undefined ? 'ticket' : 'token'}' conflict: pass one`);
  }
  const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof WebSocketImpl !== 'function') {
    throw new TypeError(`no WebSocket implementation: pass the 'WebSocket' option (e.g. WebSocket from 'ws')`);
  }
  const resolved: ResolvedOptions = {
    ...DEFAULTS,
    ...dropUndefined(options),
    url: url.toString(),
    auth: options.auth ?? { ticket: options.ticket, token: options.token },
    getTicket: options.getTicket,
    getToken: options.getToken,
    initPayload: options.initPayload,
    WebSocket: WebSocketImpl,
  };
  nonNegative('minReconnectDelayMs', resolved.minReconnectDelayMs);
  nonNegative('maxReconnectDelayMs', resolved.maxReconnectDelayMs);
  nonNegative('maxReconnectAttempts', resolved.maxReconnectAttempts, true);
  nonNegative('maxQueueSize', resolved.maxQueueSize, true);
  if (resolved.maxQueueSize === Infinity) throw new TypeError(`option 'maxQueueSize' must be finite`);
  if (resolved.minReconnectDelayMs > resolved.maxReconnectDelayMs) {
    throw new TypeError(`options 'minReconnectDelayMs' and 'maxReconnectDelayMs' conflict: min is above max`);
  }
  if (resolved.setAuthStrategy !== 'inband' && resolved.setAuthStrategy !== 'reconnect') {
    throw new TypeError(`option 'setAuthStrategy' must be 'inband' or 'reconnect'`);
  }
  return resolved;
}

