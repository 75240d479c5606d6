/** One authenticated connection as every node sees it. */
export interface ConnectionRecord {
  /** The connection id (a UUID, unique across nodes). */
  readonly id: string;
  readonly user: string;
  /** The node holding the socket. */
  readonly node: string;
  /** When the socket was accepted, ms since the epoch. */
  readonly openedAt: number;
  /** The token's `exp`, ms since the epoch: the connection's identity lasts no longer. */
  readonly expiresAt: number;
  /** `held`: the token expired under the `reauth` policy and deliveries wait for a reauth. */
  readonly state: 'authenticated' | 'held';
}

/**
 * Who is connected, across every node, until when: the registry of seed 004. Each node writes its
 * own connections; a node that dies without a word (kill -9) has its entries gone once its lease
 * lapses (`leaseMs`). Writes are fire and forget (a socket never waits for the store); a store that
 * lost them (an outage longer than the lease) writes `held()` again when it is back. Reads throw
 * `StoreUnavailableError` when the store cannot answer.
 */
export interface ConnectionStore {
  /** How long after a node's last sign of life its entries may still be listed, in ms (documented bound). */
  readonly leaseMs: number;
  /** Starts this node's lease. `held` lists this node's live connections, for a rewrite after an outage. */
  start(node: string, held: () => Iterable<ConnectionRecord>): Promise<void>;
  /** Records a bound connection, or its new `expiresAt`/`state`. */
  put(record: ConnectionRecord): void;
  /** Forgets a connection (closed, logged out). */
  delete(id: string, user: string): void;
  /** Every live connection of `user`, on every node. */
  ofUser(user: string): Promise<readonly ConnectionRecord[]>;
  /** One connection by id, wherever it is. */
  get(id: string): Promise<ConnectionRecord | undefined>;
  /** Live connections per node id, for metrics. */
  countsByNode(): Promise<Readonly<Record<string, number>>>;
  close(): Promise<void>;
}
