import { UnauthorizedError } from './errors.js';
import type { AuthCredentials } from './options.js';
import { singleFlight } from './single-flight.js';

/**
 * The credentials of the next connection and of in-band refreshes: the static ones, and the
 * providers (`getTicket`, `getToken`), each called once at a time however many need it.
 */
export class Credentials {
  readonly #getTicket: (() => Promise<string>) | undefined;
  readonly #getToken: (() => Promise<string>) | undefined;
  #ticket: string | undefined;
  #token: string | undefined;
  /** The next connection fetches a fresh token even if one is at hand (the last was refused or expired). */
  #needFresh = false;
  /** Fresh credentials were fetched after a refusal and no `auth_ok` came since: a second refusal stops. */
  #refreshed = false;

  constructor(auth: AuthCredentials, getTicket?: () => Promise<string>, getToken?: () => Promise<string>) {
    this.#ticket = auth.ticket;
    this.#token = auth.token;
    this.#getTicket = getTicket && singleFlight(getTicket);
    this.#getToken = getToken && singleFlight(getToken);
  }

  /** The current token, sent with every frame under `perMessageToken`. */
  get token(): string | undefined {
    return this.#token;
  }

  /** There is a `getToken` to answer `reauth_required` with. */
  get canRefreshToken(): boolean {
    return this.#getToken !== undefined;
  }

  /** `setAuth()`: new credentials, and a refusal may be answered with fresh ones again. */
  replace(auth: AuthCredentials): void {
    this.#ticket = auth.ticket;
    this.#token = auth.token;
    this.#needFresh = false;
    this.#refreshed = false;
  }

  /** `logout()`: nothing static is left to connect with. */
  forget(): void {
    this.#ticket = undefined;
    this.#token = undefined;
    this.#needFresh = false;
  }

  /** An `auth_ok`, or a new `connect()`: the next refusal may be answered with fresh credentials. */
  accepted(): void {
    this.#refreshed = false;
  }

  /** The server refused the credentials (4401/4419): true if fresh ones are to be fetched, false to stop. */
  refused(): boolean {
    if (this.#refreshed || (!this.#getToken && !this.#getTicket)) return false;
    this.#refreshed = true;
    this.#needFresh = true;
    return true;
  }

  /**
   * Credentials for a new connection: a new ticket each time (single use), the token until refused.
   * Nothing is kept when `signal` aborted meanwhile: a late provider cannot restore what `logout()` forgot.
   */
  async next(signal: AbortSignal): Promise<AuthCredentials> {
    const fresh = this.#needFresh;
    let ticket: string | undefined;
    if (this.#getTicket) {
      ticket = await this.#getTicket();
    } else if (this.#ticket !== undefined) {
      ticket = this.#ticket;
      this.#ticket = undefined;
    }
    let token = this.#token;
    if ((token === undefined || fresh) && this.#getToken) {
      token = await this.#getToken();
      if (!signal.aborted) this.#token = token;
    }
    if (!signal.aborted) this.#needFresh = false;
    return { ticket, token };
  }

  /** A fresh token from `getToken` (shared with any concurrent call); `use()` makes it the current one. */
  fetchToken(): Promise<string> {
    if (!this.#getToken) return Promise.reject(new UnauthorizedError('no getToken to refresh the token with'));
    return this.#getToken();
  }

  use(token: string): void {
    this.#token = token;
  }
}

/** What an in-band refresh needs from the client. */
export interface InbandRefresh {
  readonly credentials: Credentials;
  /** Aborted when the refresh is no longer wanted: the socket is gone, or the user logged out. */
  readonly signal: AbortSignal;
  /** The client still waits for a fresh token on this socket. */
  readonly wanted: () => boolean;
  /** How many times a failing `getToken` is tried. */
  readonly tries: number;
  /** Waits before try `retry + 1` (backoff); ends early when `signal` aborts. */
  readonly pause: (retry: number, signal: AbortSignal) => Promise<void>;
  /** Makes the fresh token the current one and sends it in an `auth` frame. */
  readonly send: (token: string) => void;
  /** A `getToken` failure, reported as an `error` event. */
  readonly report: (error: unknown) => void;
  /** `getToken` threw `UnauthorizedError`: the user is logged out. */
  readonly unauthorized: (error: UnauthorizedError) => void;
}

/**
 * Answers `reauth_required`: gets a fresh token (shared with any concurrent need) and sends it on the
 * live socket. Other errors than `UnauthorizedError` are retried with backoff up to `tries` times;
 * past that the server's deadline decides (it closes 4419 and the reconnect path takes over).
 */
export async function refreshInBand(refresh: InbandRefresh): Promise<void> {
  const { credentials, signal, wanted } = refresh;
  const current = (): boolean => !signal.aborted && wanted();
  for (let retry = 0; ; retry++) {
    try {
      const token = await credentials.fetchToken();
      if (!current()) return;
      refresh.send(token);
      return;
    } catch (error) {
      if (!current()) return;
      refresh.report(error);
      if (error instanceof UnauthorizedError) {
        refresh.unauthorized(error);
        return;
      }
      if (retry + 1 >= refresh.tries) return;
      await refresh.pause(retry, signal);
      if (!current()) return;
    }
  }
}
