import type { PresenceMember, PresenceStore } from '@authsocket/server';
import { attempt, type Client } from './errors.js';
import type { Keys } from './keys.js';
import { COUNT, HDEL_IF_LEASE, JOIN, liveValues } from './lease-scripts.js';
import type { LeaseHolder, NodeLease } from './lease.js';

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

  async join(topic: string, member: PresenceMember, maxMembers?: number): Promise<boolean> {
    await this.#lease.ready;
    const lease = this.#lease.id;
    if (lease === undefined) throw new Error('the Redis presence store is closed');
    const live = maxMembers === undefined ? [] : [...(await this.#lease.live())];
    const value = `${lease}\n${JSON.stringify(member)}`;
    const joined = await attempt(this.#redis, () =>
      JOIN.run(this.#redis, [this.#keys.presence(topic)], [member.connection, value, maxMembers ?? -1, ...live]),
    );
    if (joined !== 1) return false;
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
  async sweep(lease: string): Promise<void> {
    const index = this.#keys.leasePresence(lease);
    const fields = await attempt(this.#redis, () => this.#redis.hkeys(index));
    await attempt(this.#redis, () =>
      Promise.all(
        fields.map((field) => {
          const newline = field.indexOf('\n');
          return HDEL_IF_LEASE.run(this.#redis, [this.#keys.presence(field.slice(newline + 1))], [field.slice(0, newline), lease]);
        }),
      ),
    );
    await attempt(this.#redis, () => this.#redis.del(index));
  }
}
