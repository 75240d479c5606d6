import type { ConnectionRecord, ConnectionStore } from '@authsocket/server';
import { attempt, type Client } from './errors.js';
import type { Keys } from './keys.js';
import { DEL_IF_LEASE, HDEL_IF_LEASE, liveValues } from './lease-scripts.js';
import { type LeaseHolder, NodeLease, sweepIndex } from './lease.js';

const STATES: ReadonlySet<string> = new Set(['authenticated', 'held']);

/** A record as this store wrote it, or undefined for anything else (never trusted). */
function parseRecord(value: unknown): ConnectionRecord | undefined {
  const record = value as Partial<ConnectionRecord> | null;
  const valid =
    typeof record?.id === 'string' &&
    typeof record.user === 'string' &&
    typeof record.node === 'string' &&
    typeof record.openedAt === 'number' &&
    typeof record.expiresAt === 'number' &&
    STATES.has(record.state as string);
  if (!valid) return undefined;
  const { id, user, node, openedAt, expiresAt, state } = record as ConnectionRecord;
  return { id, user, node, openedAt, expiresAt, state };
}

/**
 * The connection registry in Redis: a hash per user (connection id → record) for `ofUser`, a string
 * per connection for `get`, and per lease the ids it wrote (for counts and the sweep). Every value
 * carries the writer's lease id; reads keep those of live leases only, so a node killed -9 has
 * its connections gone within `leaseMs` (see `NodeLease`). Writes are fire and forget.
 */
export class RedisConnectionStore implements ConnectionStore, LeaseHolder {
  readonly #redis: Client;
  readonly #keys: Keys;
  readonly #lease: NodeLease;
  #held: () => Iterable<ConnectionRecord> = () => [];

  constructor(redis: Client, keys: Keys, lease: NodeLease) {
    this.#redis = redis;
    this.#keys = keys;
    this.#lease = lease;
  }

  get leaseMs(): number {
    return this.#lease.leaseMs;
  }

  start(node: string, held: () => Iterable<ConnectionRecord>): Promise<void> {
    this.#held = held;
    return this.#lease.start(node, this);
  }

  put(record: ConnectionRecord): void {
    if (!this.#lease.writable()) return;
    const lease = this.#lease.id as string;
    const value = `${lease}\n${JSON.stringify(record)}`;
    const { failed } = this.#lease;
    this.#redis.hset(this.#keys.userConnections(record.user), record.id, value).catch(failed);
    this.#redis.set(this.#keys.connection(record.id), value).catch(failed);
    this.#redis.hset(this.#keys.leaseConnections(lease), record.id, record.user).catch(failed);
  }

  delete(id: string, user: string): void {
    if (!this.#lease.writable()) return;
    const { failed } = this.#lease;
    this.#redis.hdel(this.#keys.userConnections(user), id).catch(failed);
    this.#redis.del(this.#keys.connection(id)).catch(failed);
    this.#redis.hdel(this.#keys.leaseConnections(this.#lease.id as string), id).catch(failed);
  }

  async ofUser(user: string): Promise<readonly ConnectionRecord[]> {
    const [live, values] = await Promise.all([
      this.#lease.live(),
      attempt(this.#redis, () => this.#redis.hvals(this.#keys.userConnections(user))),
    ]);
    return liveValues(values, live, parseRecord);
  }

  async get(id: string): Promise<ConnectionRecord | undefined> {
    const [live, value] = await Promise.all([this.#lease.live(), attempt(this.#redis, () => this.#redis.get(this.#keys.connection(id)))]);
    return value === null ? undefined : liveValues([value], live, parseRecord)[0];
  }

  async countsByNode(): Promise<Readonly<Record<string, number>>> {
    const live = [...(await this.#lease.live())];
    const sizes = await Promise.all(live.map((lease) => attempt(this.#redis, () => this.#redis.hlen(this.#keys.leaseConnections(lease)))));
    const counts: Record<string, number> = {};
    // A node holds two leases for a moment while it rewrites: the fuller one counts.
    live.forEach((lease, i) => {
      const node = NodeLease.nodeOf(lease);
      counts[node] = Math.max(counts[node] ?? 0, sizes[i] as number);
    });
    return counts;
  }

  close(): Promise<void> {
    return this.#lease.close();
  }

  /** @internal the lease's: every connection this node holds, written again under the current lease. */
  rewrite(): void {
    for (const record of this.#held()) this.put(record);
  }

  /** @internal the lease's: deletes what the dead `lease` wrote, unless rewritten since under another. */
  sweep(lease: string, progress: () => Promise<void>): Promise<void> {
    return sweepIndex(this.#redis, this.#keys.leaseConnections(lease), progress, (entries) =>
      entries.flatMap(([id, user]) => [
        HDEL_IF_LEASE.run(this.#redis, [this.#keys.userConnections(user)], [id, lease]),
        DEL_IF_LEASE.run(this.#redis, [this.#keys.connection(id)], [lease]),
      ]),
    );
  }
}
