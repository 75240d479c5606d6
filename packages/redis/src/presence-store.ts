import type { PresenceMember, PresenceStore } from '@authsocket/server';
import { attempt, type Client, unavailable } from './errors.js';
import type { Keys } from './keys.js';
import { COUNT, HDEL_IF_LEASE, JOIN, liveValues } from './lease-scripts.js';
import { type LeaseHolder, type NodeLease, sweepIndex } from './lease.js';

/** A member as this store wrote it, or undefined for anything else. */
function parseMember(value: unknown): PresenceMember | undefined {
  const member = value as Partial<PresenceMember> | null;
  if (typeof member?.user !== 'string' || typeof member.connection !== 'string') return undefined;
  const { user, connection, info } = member as PresenceMember;
  return info === undefined ? { user, connection } : { user, connection, info };
}

/**
 * Presence in Redis: a hash per topic (connection id → member), each value under the writer's
 * lease, like the connection registry; reads and the cap count only members of live leases, so a
 * dead node's members are gone within `leaseMs`. Centrifugo keeps a sorted set of per-member
 * expiries next to the hash and has every client refresh its entry; here one lease per node
 * stands for all its members, so a node's upkeep is one write per period, not one per member.
 */
export class RedisPresenceStore implements PresenceStore, LeaseHolder {
  readonly #redis: Client;
  readonly #keys: Keys;
  readonly #lease: NodeLease;
  #held: () => Iterable<readonly [string, PresenceMember]> = () => [];

  constructor(redis: Client, keys: Keys, lease: NodeLease) {
    this.#redis = redis;
    this.#keys = keys;
    this.#lease = lease;
  }

  get leaseMs(): number {
    return this.#lease.leaseMs;
  }

  start(node: string, held: () => Iterable<readonly [string, PresenceMember]>): Promise<void> {
    this.#held = held;
    return this.#lease.start(node, this);
  }

  /**
   * Fails fast with `StoreUnavailableError` while there is no lease (never waits for one: a `leave`
   * dropped meanwhile could not undo a join that completes later).
   */
  async join(topic: string, member: PresenceMember, maxMembers?: number): Promise<boolean> {
    if (!this.#lease.writable()) throw unavailable(new Error('the Redis presence store holds no lease (Redis unreachable, or closed)'));
    const live = maxMembers === undefined ? [] : [...(await this.#lease.live())];
    // Read after the await: the lease may have been replaced meanwhile.
    const lease = this.#lease.id;
    if (lease === undefined) throw unavailable(new Error('the Redis presence store is closed'));
    const value = `${lease}\n${JSON.stringify(member)}`;
    const joined = await attempt(this.#redis, () =>
      JOIN.run(this.#redis, [this.#keys.presence(topic)], [member.connection, value, maxMembers ?? -1, ...live]),
    );
    if (joined !== 1) return false;
    // Replaced while JOIN was in flight: the member went out under the old lease, so rewrite under the new one.
    if (this.#lease.id !== lease) this.#lease.stale();
    this.#redis.hset(this.#keys.leasePresence(lease), `${member.connection}\n${topic}`, '1').catch(this.#lease.failed);
    return true;
  }

  leave(topic: string, connection: string): void {
    if (!this.#lease.writable()) return;
    const { failed } = this.#lease;
    this.#redis.hdel(this.#keys.presence(topic), connection).catch(failed);
    this.#redis.hdel(this.#keys.leasePresence(this.#lease.id as string), `${connection}\n${topic}`).catch(failed);
  }

  async members(topic: string): Promise<readonly PresenceMember[]> {
    const [live, values] = await Promise.all([this.#lease.live(), attempt(this.#redis, () => this.#redis.hvals(this.#keys.presence(topic)))]);
    return liveValues(values, live, parseMember);
  }

  async count(topic: string): Promise<number> {
    const live = [...(await this.#lease.live())];
    return (await attempt(this.#redis, () => COUNT.run(this.#redis, [this.#keys.presence(topic)], live))) as number;
  }

  close(): Promise<void> {
    return this.#lease.close();
  }

  /** @internal the lease's: every member this node holds, written again under the current lease (no cap). */
  rewrite(): void {
    for (const [topic, member] of this.#held()) {
      if (!this.#lease.writable()) return;
      const lease = this.#lease.id as string;
      const { failed } = this.#lease;
      this.#redis.hset(this.#keys.presence(topic), member.connection, `${lease}\n${JSON.stringify(member)}`).catch(failed);
      this.#redis.hset(this.#keys.leasePresence(lease), `${member.connection}\n${topic}`, '1').catch(failed);
    }
  }

  /** @internal the lease's: deletes the members the dead `lease` wrote, unless rewritten since. */
  sweep(lease: string, progress: () => Promise<void>): Promise<void> {
    return sweepIndex(this.#redis, this.#keys.leasePresence(lease), progress, (entries) =>
      entries.map(([field]) => {
        const newline = field.indexOf('\n');
        return HDEL_IF_LEASE.run(this.#redis, [this.#keys.presence(field.slice(newline + 1))], [field.slice(0, newline), lease]);
      }),
    );
  }
}
