export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Callers waiting for one outcome (an `auth_ok`, a `logged_out`, a confirmation), settled all at once. */
export class Waiters {
  #waiting: Array<Deferred> = [];

  get size(): number {
    return this.#waiting.length;
  }

  /** A promise settled by the next `resolveAll()` or `rejectAll()`. */
  add(): Promise<void> {
    const waiter = deferred();
    this.#waiting.push(waiter);
    return waiter.promise;
  }

  resolveAll(): void {
    for (const waiter of this.#take()) waiter.resolve();
  }

  rejectAll(error: Error): void {
    for (const waiter of this.#take()) waiter.reject(error);
  }

  #take(): Deferred[] {
    const waiting = this.#waiting;
    this.#waiting = [];
    return waiting;
  }
}
