import { QueueFullError } from './errors.js';

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
