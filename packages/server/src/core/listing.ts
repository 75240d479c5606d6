import type { ConnectionRecord, ConnectionStore } from '../connection-store.js';
import type { Logger } from '../logger.js';
import type { Registry } from './registry.js';
import type { Session } from './session.js';

/**
 * Keeps the cluster-wide connection registry (`options.connectionStore`) in step with this node's
 * sessions: a session is listed once it joined its user's index, re-listed when its expiry or state
 * changes, and unlisted on logout and close. Writes are fire and forget (the store logs and repairs
 * its own failures). Without a store (`connectionStore: false`, the default) nothing is written and
 * the reads answer from this node's sessions, all there are on one node.
 */
export class Listing {
  readonly #store: ConnectionStore | undefined;
  readonly #registry: Registry;
  readonly #node: string;

  constructor(store: ConnectionStore | false, registry: Registry, node: string) {
    this.#store = store === false ? undefined : store;
    this.#registry = registry;
    this.#node = node;
  }

  /** Starts the store's lease for this node; `held` lists what a rewrite after an outage writes again. */
  start(logger: Logger): void {
    this.#store
      ?.start(this.#node, () => this.held())
      .catch((error: unknown) => logger.error({ err: String(error) }, 'connection registry failed to start'));
  }

  /** The session just joined its user's index: list it. */
  listed(session: Session): void {
    this.#store?.put(this.record(session));
  }

  /** The session's expiry or state changed: list it anew, if it is listed. */
  changed(session: Session): void {
    if (this.#store !== undefined && this.#isListed(session)) this.#store.put(this.record(session));
  }

  /** Called before the session leaves its user's index (logout, close), while it still has its id. */
  leaving(session: Session): void {
    if (this.#store !== undefined && this.#isListed(session)) this.#store.delete(session.id, session.user as string);
  }

  /** Every listed session of this node, as records. */
  *held(): IterableIterator<ConnectionRecord> {
    for (const user of this.#registry.users()) {
      for (const session of this.#registry.ofUser(user) ?? []) yield this.record(session);
    }
  }

  /** Every listed connection of `user`: the store's, or without one this node's. */
  async ofUser(user: string): Promise<readonly ConnectionRecord[]> {
    if (this.#store !== undefined) return this.#store.ofUser(user);
    return [...(this.#registry.ofUser(user) ?? [])].map((session) => this.record(session));
  }

  /** The listed connection `id`: the store's, or without one this node's. */
  async get(id: string): Promise<ConnectionRecord | undefined> {
    if (this.#store !== undefined) return this.#store.get(id);
    const session = this.#registry.byId(id);
    return session !== undefined && this.#isListed(session) ? this.record(session) : undefined;
  }

  /** Listed connections per node: the store's, or without one this node's count. */
  async countsByNode(): Promise<Readonly<Record<string, number>>> {
    if (this.#store !== undefined) return this.#store.countsByNode();
    let listed = 0;
    for (const user of this.#registry.users()) listed += this.#registry.ofUser(user)?.size ?? 0;
    return { [this.#node]: listed };
  }

  record(session: Session): ConnectionRecord {
    return {
      id: session.id,
      user: session.user as string,
      node: this.#node,
      openedAt: session.openedAt,
      expiresAt: session.expiresAt as number,
      state: session.state === 'held' ? 'held' : 'authenticated',
    };
  }

  #isListed(session: Session): boolean {
    return session.user !== undefined && this.#registry.ofUser(session.user)?.has(session) === true;
  }
}
