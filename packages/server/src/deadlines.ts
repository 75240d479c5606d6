import type { Clock } from './clock.js';

/** Longest delay `setTimeout` honours; later deadlines re-arm on the way. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** A scheduled deadline. */
export interface Deadline {
  /** Removes it from the queue at once; after it ran, does nothing. */
  cancel(): void;
}

/** The heap entry is the handle: no closure per deadline to cancel it, none to run it. */
class Entry implements Deadline {
  /** Position in the heap; -1 once run or cancelled. */
  index = -1;

  constructor(
    readonly queue: DeadlineQueue,
    readonly at: number,
    readonly seq: number,
    readonly callback: (arg: unknown) => void,
    readonly arg: unknown,
  ) {}

  cancel(): void {
    this.queue.remove(this);
  }
}

/**
 * Every connection deadline (auth timeout, reauth warning, expiry, reauth grace) in one binary
 * min-heap behind a single timer, so 100k connections cost one timer, not 100k. A cancelled
 * deadline leaves the heap at once, so 100k authenticated connections hold no spent auth timeouts.
 */
export class DeadlineQueue {
  readonly #clock: Clock;
  readonly #heap: Entry[] = [];
  #seq = 0;
  #timer: unknown;
  #armedFor = Number.POSITIVE_INFINITY;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * Runs `callback(arg)` once the clock reaches `at` (ms epoch). Passing the subject as `arg` to a
   * callback made once lets a caller schedule without allocating a closure per deadline.
   */
  schedule(at: number, callback: () => void): Deadline;
  schedule<T>(at: number, callback: (arg: T) => void, arg: T): Deadline;
  schedule(at: number, callback: (arg: unknown) => void, arg?: unknown): Deadline {
    const entry = new Entry(this, at, this.#seq++, callback, arg);
    this.#siftUp(entry, this.#heap.length);
    if (at < this.#armedFor) this.#arm();
    return entry;
  }

  /** Number of scheduled deadlines. */
  get size(): number {
    return this.#heap.length;
  }

  /** Takes `entry` out of the heap (what `Deadline.cancel` does). */
  remove(entry: Entry): void {
    const i = entry.index;
    if (i < 0 || this.#heap[i] !== entry) return;
    entry.index = -1;
    const last = this.#heap.pop() as Entry;
    if (last === entry) return;
    // The last entry fills the hole, then moves whichever way restores the heap order.
    if (i > 0 && this.#less(last, this.#heap[(i - 1) >> 1] as Entry)) this.#siftUp(last, i);
    else this.#siftDown(last, i);
  }

  /** Clears the timer and every entry. */
  clear(): void {
    for (const entry of this.#heap) entry.index = -1;
    this.#heap.length = 0;
    this.#disarm();
  }

  #arm(): void {
    this.#disarm();
    const top = this.#heap[0];
    if (!top) return;
    this.#armedFor = top.at;
    const delay = Math.min(Math.max(0, top.at - this.#clock.now()), MAX_TIMER_DELAY_MS);
    this.#timer = this.#clock.setTimeout(() => this.#fire(), delay);
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    for (let top = this.#heap[0]; top && top.at <= now; top = this.#heap[0]) {
      this.remove(top);
      top.callback(top.arg);
    }
    this.#arm();
  }

  #less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  /** Places `entry` at `i` or above it, moving larger parents down. */
  #siftUp(entry: Entry, i: number): void {
    const heap = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = heap[parent] as Entry;
      if (!this.#less(entry, above)) break;
      heap[i] = above;
      above.index = i;
      i = parent;
    }
    heap[i] = entry;
    entry.index = i;
  }

  /** Places `entry` at `i` or below it, moving smaller children up. */
  #siftDown(entry: Entry, i: number): void {
    const heap = this.#heap;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && this.#less(heap[right] as Entry, heap[left] as Entry) ? right : left;
      const below = heap[child] as Entry;
      if (!this.#less(below, entry)) break;
      heap[i] = below;
      below.index = i;
      i = child;
    }
    heap[i] = entry;
    entry.index = i;
  }
}
