import { createHash, randomBytes } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { TicketRecord, TicketStore } from './stores.js';

/** 256 bits from the CSPRNG: far beyond guessing, 43 base64url characters. */
const TICKET_BYTES = 32;
const TICKET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface IssuedTicket {
  readonly ticket: string;
  /** ms epoch */
  readonly expiresAt: number;
}

/** The store key of a ticket: its SHA-256, so a dump of the store holds nothing redeemable. */
export function ticketKey(ticket: string): string {
  return createHash('sha256').update(ticket).digest('base64url');
}

/** Issues and redeems connection tickets over a `TicketStore`. */
export class Tickets {
  readonly #store: TicketStore;
  readonly #ttlMs: number;
  readonly #reusable: boolean;

  constructor(store: TicketStore, options: { ttlMs: number; reusable: boolean }) {
    this.#store = store;
    this.#ttlMs = options.ttlMs;
    this.#reusable = options.reusable;
  }

  /** A ticket for `user`, valid for the TTL but never beyond the token's own expiry. */
  async issue(user: string, claims: JWTPayload, tokenExpiresAt: number, now: number): Promise<IssuedTicket> {
    const ticket = randomBytes(TICKET_BYTES).toString('base64url');
    const expiresAt = Math.min(now + this.#ttlMs, tokenExpiresAt);
    const record: TicketRecord = { user, claims, tokenExpiresAt, issuedAt: now, expiresAt };
    await this.#store.put(ticketKey(ticket), record, expiresAt - now);
    return { ticket, expiresAt };
  }

  /** The record of a valid ticket (consumed unless tickets are reusable), or undefined. */
  async redeem(ticket: string, now: number): Promise<TicketRecord | undefined> {
    if (!TICKET_PATTERN.test(ticket)) return undefined;
    const record = await this.#store.take(ticketKey(ticket), !this.#reusable);
    return record && record.expiresAt > now ? record : undefined;
  }
}
