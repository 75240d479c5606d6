import type { PresenceMember } from '@authsocket/protocol';

export type { PresenceMember };

/**
 * Who is subscribed to which topic, across every node (Centrifugo's presence manager). Like the
 * `ConnectionStore`, each node writes its own members and a dead node's members are gone once its
 * lease lapses. Reads and `join` throw `StoreUnavailableError` when the store cannot answer.
 */
export interface PresenceStore {
  /** How long after a node's last sign of life its members may still be listed, in ms. */
  readonly leaseMs: number;
  /** Starts this node's lease. `held` lists this node's members (topic, member), for a rewrite after an outage. */
  start(node: string, held: () => Iterable<readonly [string, PresenceMember]>): Promise<void>;
  /**
   * Adds `member` to `topic`. Resolves false, adding nothing, when the topic already holds
   * `maxMembers` members (checked and added in one step, so nodes racing cannot pass the cap).
   */
  join(topic: string, member: PresenceMember, maxMembers?: number): Promise<boolean>;
  /** Removes the member with connection id `connection` from `topic`. Fire and forget. */
  leave(topic: string, connection: string): void;
  members(topic: string): Promise<readonly PresenceMember[]>;
  /** The number of members, without listing them. */
  count(topic: string): Promise<number>;
  close(): Promise<void>;
}

/** Presence of one process. */
export class MemoryPresenceStore implements PresenceStore {
  readonly leaseMs = 0;
  readonly #topics = new Map<string, Map<string, PresenceMember>>();

  async start(): Promise<void> {}

  async join(topic: string, member: PresenceMember, maxMembers?: number): Promise<boolean> {
    let members = this.#topics.get(topic);
    if (!members) this.#topics.set(topic, (members = new Map()));
    if (!members.has(member.connection) && maxMembers !== undefined && members.size >= maxMembers) return false;
    members.set(member.connection, member);
    return true;
  }

  leave(topic: string, connection: string): void {
    const members = this.#topics.get(topic);
    members?.delete(connection);
    if (members?.size === 0) this.#topics.delete(topic);
  }

  async members(topic: string): Promise<readonly PresenceMember[]> {
    return [...(this.#topics.get(topic)?.values() ?? [])];
  }

  async count(topic: string): Promise<number> {
    return this.#topics.get(topic)?.size ?? 0;
  }

  async close(): Promise<void> {
    this.#topics.clear();
  }
}
