import type { Clock } from './clock.js';

/** Longest delay `setTimeout` honours; later deadlines re-arm on the way. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

interface Entry {
  at: number;
  seq: number;
  callback: (() => void) | undefined;
}

/** Cancels a scheduled deadline; calling it after the deadline ran does nothing. */
export type CancelDeadline = () => void;

/**
 * Every connection deadline (auth timeout, reauth warning, expiry, reauth grace) in one binary
 * min-heap behind a single timer, so 100k connections cost one timer, not 100k.
 * Cancelled entries are dropped lazily when they reach the top.
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

  /** Runs `callback` once the clock reaches `at` (ms epoch). */
  schedule(at: number, callback: () => void): CancelDeadline {
    const entry: Entry = { at, seq: this.#seq++, callback };
    this.#push(entry);
    if (at < this.#armedFor) this.#arm();
    return () => {
      entry.callback = undefined;
    };
  }

  /** Number of live and cancelled-but-not-yet-dropped entries. */
  get size(): number {
    return this.#heap.length;
  }

  /** Clears the timer and every entry. */
  clear(): void {
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
      this.#pop();
      const callback = top.callback;
      top.callback = undefined;
      callback?.();
    }
    this.#arm();
  }

  #less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(entry, heap[parent] as Entry)) break;
      heap[i] = heap[parent] as Entry;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop() as Entry;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && this.#less(heap[right] as Entry, heap[left] as Entry) ? right : left;
      if (!this.#less(heap[child] as Entry, last)) break;
      heap[i] = heap[child] as Entry;
      i = child;
    }
    heap[i] = last;
  }
}
