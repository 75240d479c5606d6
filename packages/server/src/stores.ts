import type { JWTPayload } from 'jose';

/** What a ticket stands for. Stored under the ticket's hash, never under the ticket itself. */
export interface TicketRecord {
  readonly user: string;
  /** The issuing JWT's claims, handed to the application with the connection. */
  readonly claims: JWTPayload;
  /** The issuing JWT's `exp` in ms: the connection's identity lasts no longer. */
  readonly tokenExpiresAt: number;
  /** When the ticket was issued (ms), to refuse tickets older than a revocation. */
  readonly issuedAt: number;
  /** When the ticket stops being redeemable (ms). */
  readonly expiresAt: number;
}

/**
 * Where tickets live between issue and redemption. Implementations throw `StoreUnavailableError`
 * when they cannot answer, so callers fail closed.
 */
export interface TicketStore {
  /** Stores `record` under `key`, to be forgotten after `ttlMs`. */
  put(key: string, record: TicketRecord, ttlMs: number): Promise<void>;
  /**
   * Returns the record under `key`, atomically deleting it when `consume` is true, so that of any
   * number of concurrent redemptions exactly one gets the record.
   */
  take(key: string, consume: boolean): Promise<TicketRecord | undefined>;
}

/** Users whose sessions were revoked, and when. */
export interface RevocationStore {
  revoke(user: string, at: number): Promise<void>;
  /** When `user` was last revoked (ms), or undefined. */
  revokedAt(user: string): Promise<number | undefined>;
  /** The same answer synchronously, for stores in this process's memory; absent for remote ones. */
  revokedAtNow?(user: string): number | undefined;
}

/** In-process ticket store: a Map in insertion order, so expired entries are swept from the front. */
export class MemoryTicketStore implements TicketStore {
  readonly #entries = new Map<string, { record: TicketRecord; forgetAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async put(key: string, record: TicketRecord, ttlMs: number): Promise<void> {
    this.#sweep();
    this.#entries.set(key, { record, forgetAt: this.#now() + ttlMs });
  }

  async take(key: string, consume: boolean): Promise<TicketRecord | undefined> {
    const entry = this.#entries.get(key);
    if (!entry || entry.forgetAt <= this.#now()) return undefined;
    // Synchronous get + delete: no other redemption can interleave on one event loop.
    if (consume) this.#entries.delete(key);
    return entry.record;
  }

  /** Number of stored tickets (expired ones included until swept). */
  get size(): number {
    return this.#entries.size;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      // Entries share one TTL, so the first live one ends the sweep.
      if (entry.forgetAt > now) break;
      this.#entries.delete(key);
    }
  }
}

/** In-process revocation list. */
export class MemoryRevocationStore implements RevocationStore {
  readonly #revoked = new Map<string, number>();

  async revoke(user: string, at: number): Promise<void> {
    this.#revoked.set(user, at);
  }

  async revokedAt(user: string): Promise<number | undefined> {
    return this.#revoked.get(user);
  }

  revokedAtNow(user: string): number | undefined {
    return this.#revoked.get(user);
  }
}
