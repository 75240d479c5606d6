import type { ConnectionRecord, ConnectionStore } from '../connection-store.js';
import type { Logger } from '../logger.js';
import type { Registry } from './registry.js';
import type { Session } from './session.js';

/**
 * Keeps the cluster-wide connection registry (`options.connectionStore`) in step with this node's
 * sessions: a session is listed once it joined its user's index, re-listed when its expiry or state
 * changes, and unlisted on logout and close. Writes are fire and forget (the store logs and repairs
 * its own failures); without a store (`connectionStore: false`) every method is a no-op.
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
