import type { StreamPosition } from '@authsocket/protocol';

/** Who a publication is for. */
export type Audience =
  | { readonly user: string }
  | { readonly topic: string }
  | { readonly everyone: true }
  /** One connection, by its id, wherever it is: at most once, like `connection.send`. */
  | { readonly connection: string };

/**
 * One message on its way to connections, on any node. `data` is the application data already
 * serialized as JSON, so it is encoded once, not once per node or connection.
 */
export interface Publication {
  readonly to: Audience;
  /** The application data as JSON; for a `join` / `leave`, the member's JSON. */
  readonly data: string;
  /**
   * A presence event instead of a `message`: a `join` / `leave` frame for a topic's subscribers,
   * `data` the member. Never kept in history (no stream).
   */
  readonly kind?: 'join' | 'leave';
  /** The stream it belongs to, when kept in history (user and topic messages). */
  readonly stream?: string;
  readonly offset?: number;
  readonly epoch?: string;
}

/** What a stream holds after a position. */
export interface HistoryRead {
  /** The stream's current epoch and last offset. */
  readonly position: StreamPosition;
  /**
   * True when every message after the requested position is in `publications`: same epoch, and the
   * history still reaches back to it. When false, `publications` is empty: no partial, silent replay.
   */
  readonly recovered: boolean;
  readonly publications: readonly Publication[];
}

/** A broker's link to the other nodes: only `ready` can publish and read. */
export type BrokerStatus = 'connecting' | 'ready' | 'reconnecting' | 'closed';

/** Messages between nodes that are not publications: a revocation, or closing one connection. */
export type ControlMessage =
  | { readonly revoke: string }
  | { readonly close: string; readonly code: number; readonly reason: string };

/** What a node does with what the broker delivers. */
export interface BrokerHandlers {
  /** Delivers to this node's matching connections; returns how many it reached. */
  publication(publication: Publication): number;
  control(message: ControlMessage): void;
  /**
   * The link to the other nodes is back after a loss (reconnected and resubscribed): control
   * messages sent meanwhile may never arrive, so the node re-reads what they would have said
   * (revocations of its live users) from the stores.
   */
  resync?(): void;
}

export interface PublishOptions {
  /**
   * A caller's key for this publication: a second publish with the same key (and audience), within
   * the broker's idempotency window, publishes nothing and resolves with 0.
   */
  readonly idempotencyKey?: string;
}

/**
 * Moves publications between gateway nodes and keeps per-stream history (the role Centrifugo's
 * broker plays). `publish` appends to history and hands the publication to every node — this one
 * included — through one ordered channel, so every node delivers a stream's publications in offset
 * order (a node delivering its own publications directly could overtake one still in flight from
 * another node). An epoch names one continuous life of a stream's history: when history is lost
 * (restart, flush), the epoch changes, so a client holding an old position learns it cannot be
 * recovered.
 */
export interface Broker {
  /** The link's state, for `/healthz`; a broker without one (in memory) is always ready. */
  readonly status?: BrokerStatus;
  /** This node's id on the broker, for logs, metrics and `/healthz`. */
  readonly nodeId?: string;
  /**
   * Appends to `publication.stream`'s history (if it has one) and delivers it on every node.
   * Resolves once this node has delivered it, with what this node's `publication` handler returned
   * (0 when published but not back on this node in time: the other nodes still get it).
   * Rejects with `StoreUnavailableError` when it was not published (safe to retry) and with
   * `OutcomeUnknownError` when it was sent but the outcome is unknown.
   */
  publish(publication: Publication, options?: PublishOptions): Promise<number>;
  /** Sends a control message to the other nodes. */
  control(message: ControlMessage): Promise<void>;
  /** The current position of `stream` (offset 0 in a fresh epoch if it never had a message). */
  position(stream: string): Promise<StreamPosition>;
  /**
   * The same answer synchronously, for brokers in this process's memory; absent for remote ones.
   * Taken together with starting live delivery, it leaves no gap to read from history.
   */
  positionNow?(stream: string): StreamPosition;
  /** The publications after `after`, or `recovered: false` if they are no longer all there. */
  read(stream: string, after: StreamPosition): Promise<HistoryRead>;
  /** Starts receiving from other nodes. */
  start(handlers: BrokerHandlers): Promise<void>;
  close(): Promise<void>;
}
