import type { StreamPosition } from '@authsocket/protocol';
import { clientAddressResolver } from '../client-address.js';
import { classify, RevokedError } from '../errors.js';
import type { AuthMethod, EventSink, Identity } from '../events.js';
import type { IdentityVerifier } from '../identity.js';
import type { ResolvedOptions } from '../options.js';
import { KeyedRateLimiter } from '../rate-limit.js';
import type { Tickets } from '../tickets.js';
import { readCredentials, type UpgradeCredentials } from './credentials.js';
import { REFUSAL_BODY } from './http.js';
import { type Refusal, reportRefusal } from './refusals.js';
import type { HttpReply, HttpRequest, UpgradeRequest } from './ports.js';

/** An upgrade the gateway accepts, with the identity proven at the handshake, if any. */
export interface Admitted {
  readonly status: 101;
  readonly identity: Identity | undefined;
  readonly method: AuthMethod | undefined;
  readonly resume: Record<string, StreamPosition> | undefined;
}

/** An upgrade refused with a real HTTP status, before any socket exists. */
export interface Refused {
  readonly status: 400 | 401 | 403 | 404 | 429 | 503;
  readonly headers?: Record<string, string>;
}

/** The request target as a URL, or undefined when it cannot be parsed (e.g. `//[?x`). */
function parseTarget(target: string): URL | undefined {
  try {
    return new URL(target, 'http://localhost');
  } catch {
    return undefined;
  }
}

/**
 * The HTTP edge's decisions: who may upgrade (origin, path, rate, credentials) and who gets a
 * ticket. Knows nothing of open sockets.
 */
export class Admission {
  readonly #options: ResolvedOptions;
  readonly #identity: IdentityVerifier;
  readonly #tickets: Tickets;
  readonly #events: EventSink;
  readonly #limiter: KeyedRateLimiter | undefined;
  /** The client's address for rate limits and logs, through the proxies `trustProxy` vouches for. */
  readonly clientAddress: (req: UpgradeRequest) => string | undefined;

  constructor(options: ResolvedOptions, identity: IdentityVerifier, tickets: Tickets, events: EventSink) {
    this.#options = options;
    this.#identity = identity;
    this.#tickets = tickets;
    this.#events = events;
    this.#limiter = options.upgradeRateLimit ? new KeyedRateLimiter(options.upgradeRateLimit) : undefined;
    this.clientAddress = clientAddressResolver(options.trustProxy);
  }

  /**
   * Decides an upgrade request: at once, unless a ticket or handshake token has to be checked
   * (most upgrades authenticate with their first message and need no promise here).
   */
  admit(req: UpgradeRequest): Admitted | Refused | Promise<Admitted | Refused> {
    const options = this.#options;
    const target = req.url;
    // Credentials usually travel in the subprotocol: a URL is parsed only when there is one to read.
    let url: URL | undefined;
    if (options.path !== undefined || target.includes('?')) {
      url = parseTarget(target);
      if (url === undefined) {
        options.logger.info({ address: this.clientAddress(req), problem: 'unparsable URL' }, 'upgrade refused: bad request');
        return { status: 400 };
      }
    }
    if (options.path !== undefined && url?.pathname !== options.path) return { status: 404 };
    const origin = req.header('origin');
    // A missing Origin is a non-browser client, which could forge any Origin anyway.
    if (options.allowedOrigins && origin !== undefined && !options.allowedOrigins.includes(origin)) {
      return { status: 403 };
    }
    if (this.#limiter) {
      const wait = this.#limiter.hit(this.clientAddress(req) ?? 'unknown', options.clock.now());
      if (wait > 0) return { status: 429, headers: { 'Retry-After': String(Math.ceil(wait / 1000)) } };
    }

    const credentials = readCredentials(req, url, options.acceptNoSubprotocol);
    if (typeof credentials === 'string') {
      options.logger.info({ address: this.clientAddress(req), problem: credentials }, 'upgrade refused: bad request');
      return { status: 400 };
    }
    if (credentials.token !== undefined && !options.handshakeToken) return { status: 400 };
    if (credentials.ticket !== undefined && options.ticket === 'off') return { status: 400 };
    if (credentials.ticket === undefined && options.ticket === 'required') {
      this.#refused({ stage: 'upgrade', reason: 'missing', address: this.clientAddress(req) });
      return { status: 401 };
    }
    if (credentials.ticket === undefined && credentials.token === undefined) {
      return { status: 101, identity: undefined, method: undefined, resume: credentials.resume };
    }
    return this.#authenticate(credentials, this.clientAddress(req));
  }

  #refused(refusal: Refusal): void {
    reportRefusal(this.#events, this.#options.logger, refusal);
  }

  /** The handshake's ticket and/or token, redeemed and verified. */
  async #authenticate(credentials: UpgradeCredentials, address: string | undefined): Promise<Admitted | Refused> {
    const options = this.#options;
    let identity: Identity | undefined;
    let method: AuthMethod | undefined;
    try {
      if (credentials.ticket !== undefined) {
        const record = await this.#tickets.redeem(credentials.ticket, options.clock.now());
        if (record) await this.#identity.assertNotRevoked(record.user, record.issuedAt);
        this.#events.emit('ticket', { outcome: record ? 'redeemed' : 'rejected' });
        if (!record) {
          this.#refused({ stage: 'upgrade', reason: 'ticket_invalid', address });
          return { status: 401 };
        }
        identity = { user: record.user, claims: record.claims, expiresAt: record.tokenExpiresAt };
        method = 'ticket';
      }
      if (credentials.token !== undefined) {
        const verified = await this.#identity.verify(credentials.token);
        if (identity && identity.user !== verified.user) {
          this.#refused({ stage: 'upgrade', reason: 'user_mismatch', address, user: identity.user });
          return { status: 401 };
        }
        identity = verified;
        method ??= 'handshake_token';
      }
    } catch (error) {
      const { reason, httpStatus } = classify(error);
      this.#refused({ stage: 'upgrade', reason, address, user: identity?.user, error });
      // An outage (store, IdP keys) is retryable: never "unauthorized".
      if (httpStatus === 503) return { status: 503 };
      if (error instanceof RevokedError) this.#events.emit('ticket', { outcome: 'rejected' });
      return { status: 401 };
    }
    return { status: 101, identity, method, resume: credentials.resume };
  }

  /** `POST /auth/ticket`: a ticket for the bearer of a valid JWT. */
  async issueTicket(req: HttpRequest, reply: HttpReply): Promise<void> {
    const token = /^Bearer ([^\s]+)$/i.exec(req.header('authorization') ?? '')?.[1];
    const unauthorized = () => reply.json(401, { error: REFUSAL_BODY[401] }, { 'WWW-Authenticate': 'Bearer' });
    const address = this.clientAddress(req);
    if (!token) {
      this.#refused({ stage: 'ticket_endpoint', reason: 'missing', address });
      return unauthorized();
    }
    try {
      const verified = await this.#identity.verify(token);
      const now = this.#options.clock.now();
      const issued = await this.#tickets.issue(verified.user, verified.claims, verified.expiresAt, now);
      this.#events.emit('ticket', { outcome: 'issued' });
      reply.json(200, issued);
    } catch (error) {
      const { reason, httpStatus } = classify(error);
      this.#refused({ stage: 'ticket_endpoint', reason, address, error });
      // An outage (ticket store, IdP keys) is retryable: 503, never 401.
      if (httpStatus === 503) return reply.json(503, { error: REFUSAL_BODY[503] });
      if (httpStatus === 401) return unauthorized();
      this.#options.logger.error({ err: String(error) }, 'ticket issue failed');
      reply.json(503, { error: REFUSAL_BODY[503] });
    }
  }
}
