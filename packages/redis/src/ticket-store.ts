import type { TicketRecord, TicketStore } from '@authsocket/server';
import { attempt, type Client } from './errors.js';
import type { Keys } from './keys.js';

function parseRecord(json: string | null): TicketRecord | undefined {
  if (json === null) return undefined;
  try {
    const record = JSON.parse(json) as Partial<TicketRecord> | null;
    const valid =
      typeof record?.user === 'string' &&
      typeof record.claims === 'object' &&
      record.claims !== null &&
      typeof record.tokenExpiresAt === 'number' &&
      typeof record.issuedAt === 'number' &&
      typeof record.expiresAt === 'number';
    // Anything else was not written by this store: refuse it (fail closed) rather than trust it.
    return valid ? (record as TicketRecord) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Tickets in Redis, so one node issues and any other redeems. `put` is `SET key value PX ttl`;
 * a consuming `take` is `GETDEL`, one atomic command: of any number of concurrent redemptions, on any
 * nodes, exactly one gets the record. The key is the ticket's SHA-256 (computed by the gateway), so a
 * dump of Redis holds nothing redeemable. Any failure throws `StoreUnavailableError`.
 */
export class RedisTicketStore implements TicketStore {
  readonly #redis: Client;
  readonly #keys: Keys;

  constructor(redis: Client, keys: Keys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async put(key: string, record: TicketRecord, ttlMs: number): Promise<void> {
    const ttl = Math.max(1, Math.ceil(ttlMs));
    await attempt(this.#redis, () => this.#redis.set(this.#keys.ticket(key), JSON.stringify(record), 'PX', ttl));
  }

  async take(key: string, consume: boolean): Promise<TicketRecord | undefined> {
    const name = this.#keys.ticket(key);
    const json = await attempt(this.#redis, () => (consume ? this.#redis.getdel(name) : this.#redis.get(name)));
    return parseRecord(json);
  }
}
