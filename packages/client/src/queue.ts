import type { MessageType } from '@authsocket/protocol';
import { type Deferred, deferred } from './deferred.js';
import { CancelledError, QueueFullError } from './errors.js';

/** A frame of application data: what `send()`, `publish()`, `rpc()` and `presence()` queue. */
export type DataFrame =
  | { readonly type: typeof MessageType.Message; readonly data: unknown }
  | { readonly type: typeof MessageType.Publish; readonly topic: string; readonly data: unknown }
  | { readonly type: typeof MessageType.Rpc; readonly method: string; readonly data?: unknown }
  | { readonly type: typeof MessageType.Presence; readonly topic: string; readonly countOnly?: boolean };

/** A queued frame, and the caller waiting for its answer (`ack`, or an rpc's `result` data) when it asked for one. */
export interface Outbound {
  readonly frame: DataFrame;
  readonly ack?: Deferred<unknown>;
}

/**
 * The frames `send()` and `publish()` hand over: sent at once while the client is `open`, queued in
 * order otherwise and flushed after the next `auth_ok`.
 */
export class Outbox {
  readonly #queue: BoundedQueue<Outbound>;
  readonly #transmit: (item: Outbound) => void;

  constructor(limit: number, transmit: (item: Outbound) => void) {
    this.#queue = new BoundedQueue(limit);
    this.#transmit = transmit;
  }

  /**
   * Sends or queues `frame`. Without `ack` it throws `QueueFullError` or `CancelledError` (`closed`);
   * with it, the returned promise rejects with them instead and settles on the server's answer.
   */
  add(frame: DataFrame, ack: boolean, { open, closed }: { readonly open: boolean; readonly closed: boolean }): Promise<unknown> | undefined {
    const waiter = ack ? deferred<unknown>() : undefined;
    try {
      if (closed) throw new CancelledError('client is closed');
      const item: Outbound = { frame, ack: waiter };
      if (open) this.#transmit(item);
      else this.#queue.push(item);
    } catch (error) {
      if (!waiter) throw error;
      waiter.reject(error as Error);
    }
    return waiter?.promise;
  }

  flush(): void {
    for (const item of this.#queue.drain()) this.#transmit(item);
  }

  /** Drops everything queued; callers waiting for an `ack` get `error`. */
  cancel(error: Error): void {
    for (const item of this.#queue.drain()) item.ack?.reject(error);
  }
}

/** A FIFO with a fixed capacity: `push` past it throws `QueueFullError` and keeps what it has. */
export class BoundedQueue<T> {
  readonly limit: number;
  #items: T[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`queue limit must be a non-negative integer, got ${limit}`);
    this.limit = limit;
  }

  get size(): number {
    return this.#items.length;
  }

  push(item: T): void {
    if (this.#items.length >= this.limit) throw new QueueFullError(this.limit);
    this.#items.push(item);
  }

  /** Removes and returns every item, oldest first. */
  drain(): T[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }
}
