import type { MessageType } from '@authsocket/protocol';
import type { Deferred } from './deferred.js';
import { QueueFullError } from './errors.js';

/** A frame of application data: what `send()` and `publish()` queue. */
export type DataFrame =
  | { readonly type: typeof MessageType.Message; readonly data: unknown }
  | { readonly type: typeof MessageType.Publish; readonly topic: string; readonly data: unknown };

/** A queued frame, and the caller waiting for its `ack` when it asked for one. */
export interface Outbound {
  readonly frame: DataFrame;
  readonly ack?: Deferred;
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
